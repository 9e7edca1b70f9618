"""The field's evaluation protocol and the common evaluation JSON.

HR = image cropped to a multiple of the scale; LR = `degrade(HR)` saved as 8-bit; the method's
output is rounded to 8 bits; PSNR/SSIM on the BT.601 Y channel with `scale` border pixels cropped;
"false_colour" (common.metrics.false_colour, same crop; lower is better, 0 for HR itself) is the
chroma detail the output has where HR has none, in 8-bit levels.

    python -m common.evaluate --model bicubic|nearest|PATH --data DIR --scale N \
        [--degradation bicubic] [--json OUT] [--precision float32|bfloat16|auto] [--self-ensemble]
        [--backend auto|tensorflow|openvino|onnxruntime]

Results of a model name the backend that ran it ("backend"; common.backends).
"""
import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np

import common  # noqa: F401
from common.config_cli import CommandParser, SettingError, check_checkpoint, report
from common.data import eval_pairs
from common.degradations import DEGRADATIONS, imresize
from common.files import write_json
from common.images import ImageError, list_images, to_uint8
from common.metrics import false_colour, psnr, ssim
from common.backends import BACKENDS
from common.precision import PRECISION_HELP, PRECISIONS, resolve_precision

UpscaleFn = Callable[[np.ndarray], np.ndarray]  # LR RGB [0,1] -> SR RGB [0,1]


def bicubic_upscaler(scale: int) -> UpscaleFn:
    return lambda lr: imresize(lr, float(scale))


def nearest_upscaler(scale: int) -> UpscaleFn:
    return lambda lr: np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)


def evaluate_model(
    upscale_fn: UpscaleFn,
    data_dir,
    scale: int,
    degradation: str = "bicubic",
    name: str = "model",
    progress: bool = False,
    self_ensemble: bool = False,
    backend: str | None = None,
) -> dict:
    """Run `upscale_fn` over a folder and return the common evaluation dict.

    self_ensemble: score the mean of `upscale_fn` over each LR image's 8 flips/rotations
    (common.tiling.geometric_self_ensemble); the result then says "self_ensemble": true.
    backend: recorded as "backend" (default: `upscale_fn.backend` when it is an Upscaler).
    """
    backend = backend or getattr(upscale_fn, "backend", None)
    if self_ensemble:
        from common.tiling import geometric_self_ensemble

        single_fn = upscale_fn
        upscale_fn = lambda lr: geometric_self_ensemble(single_fn, lr)  # noqa: E731
    per_image = []
    pairs = eval_pairs(data_dir, scale, degradation)
    if progress:
        from tqdm import tqdm

        pairs = tqdm(list(pairs), desc=f"{name} on {Path(data_dir).name}", leave=False)
    for image_name, hr, lr in pairs:
        sr = upscale_fn(lr)
        if sr.shape != hr.shape:
            raise ValueError(f"{image_name}: output shape {sr.shape} != HR shape {hr.shape}")
        hr8, sr8 = to_uint8(hr), to_uint8(sr)
        per_image.append({"name": image_name, "psnr": psnr(hr8, sr8, scale), "ssim": ssim(hr8, sr8, scale),
                          "false_colour": false_colour(sr8, hr8, scale)})
    if not per_image:
        raise ImageError(f"{data_dir}: no images found")
    result = {
        "dataset": Path(data_dir).name,
        "scale": scale,
        "model": name,
        "degradation": degradation,
        "psnr": float(np.mean([r["psnr"] for r in per_image])),
        "ssim": float(np.mean([r["ssim"] for r in per_image])),
        "false_colour": float(np.mean([r["false_colour"] for r in per_image])),
        "per_image": per_image,
    }
    if backend:
        result["backend"] = backend
    if self_ensemble:
        result["self_ensemble"] = True
    return result


def _false_colour_cell(r: dict) -> str:
    # results written before false colour existed have none
    return f"  false colour {r['false_colour']:.2f}" if r.get("false_colour") is not None else ""


def format_report(result: dict) -> str:
    """One line per image and a mean line: PSNR, SSIM and false colour (lower is better)."""
    lines = [f"{r['name']:<16} {r['psnr']:8.3f} dB  {r['ssim']:.4f}{_false_colour_cell(r)}"
             for r in result["per_image"]]
    lines.append(
        f"{'mean':<16} {result['psnr']:8.3f} dB  {result['ssim']:.4f}{_false_colour_cell(result)}   "
        f"({result['model']}, {result['dataset']}, x{result['scale']}, {result['degradation']}"
        + (", self-ensemble x8)" if result.get("self_ensemble") else ")")
    )
    return "\n".join(lines)


def model_upscaler(model_spec: str, scale: int, precision: str = "float32",
                   backend: str = "auto") -> tuple[UpscaleFn, str]:
    """bicubic | nearest | a checkpoint path -> (upscale function, display name).

    `precision` (float32, bfloat16 or auto) is the model's compute precision (common.precision);
    `backend` the engine that runs it (common.backends). A model's function is a
    common.upscaler.Upscaler (its `backend` says which engine runs it).
    """
    if model_spec == "bicubic":
        return bicubic_upscaler(scale), "bicubic"
    if model_spec == "nearest":
        return nearest_upscaler(scale), "nearest"
    from common.upscaler import Upscaler

    upscaler = Upscaler(model_spec, backend=backend, precision=precision)
    check_model_scale(model_spec, upscaler.meta, scale)
    announce(upscaler)
    return upscaler, Path(model_spec).stem


MAX_SCALE = 16  # no model here upscales more


def check_model_scale(spec, meta: dict, scale: int) -> None:
    """SettingError naming --scale when the model `spec` (its checkpoint metadata `meta`) upscales by
    another factor."""
    if meta.get("scale") not in (None, scale):
        raise SettingError("--scale", f"{spec} is a x{meta['scale']} model, not x{scale}")


def check_scale(scale, flag: str = "--scale") -> None:
    """SettingError unless `scale` is a whole number in 1..MAX_SCALE."""
    if not 1 <= scale <= MAX_SCALE:
        raise SettingError(flag, f"must be 1 to {MAX_SCALE}, not {scale}")


def check_image_folder(folder, flag: str = "--data") -> None:
    """SettingError unless `folder` is a folder holding images (common.images.list_images)."""
    path = Path(folder)
    if not path.is_dir():
        raise SettingError(flag, f"{folder}: no such folder")
    if not list_images(path):
        raise SettingError(flag, f"{folder}: no images in that folder")


def check_output_file(path, flag: str) -> None:
    """SettingError when an output file's name is a folder, or its folder is a file."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise SettingError(flag, f"{path} is a folder: give a file name")
    if any(parent.exists() and not parent.is_dir() for parent in path.parents):
        raise SettingError(flag, f"{path}: a parent of it is a file, not a folder")


def check_model_spec(spec, flag: str = "--model") -> None:
    """SettingError unless `spec` is bicubic, nearest, a named weight source or a checkpoint that exists."""
    if spec not in ("bicubic", "nearest"):
        check_checkpoint(flag, spec)


def announce(upscaler) -> None:
    """Say on stderr which backend runs a model (once per model loaded)."""
    print(upscaler.description, file=sys.stderr)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder of HR images (e.g. ../shared/data/Set5)")
    parser.add_argument("--scale", type=int, required=True, help=f"upscaling factor (1 to {MAX_SCALE})")
    parser.add_argument("--degradation", default="bicubic", choices=DEGRADATIONS)
    parser.add_argument("--json", help="write the results here as JSON")
    add_precision_argument(parser)
    add_backend_argument(parser)


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="auto", choices=BACKENDS,
                        help="engine that runs the model: auto = openvino when installed, else tensorflow "
                             "(the reference); converted models are cached beside the checkpoint")


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", default="float32", choices=PRECISIONS, help=PRECISION_HELP)


def add_self_ensemble_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--self-ensemble", action="store_true",
                        help="score the mean output over each image's 8 flips/rotations (8x the time; "
                             "the '+' rows of EDSR-style tables)")


def chosen_precision(name: str) -> str:
    """Resolve --precision and say which one is used (one line on stderr) unless float32 was asked."""
    used, reason = resolve_precision(name)
    if name != "float32":
        print(reason, file=sys.stderr)
    return used


def run(upscale_fn: UpscaleFn, name: str, args) -> dict:
    result = evaluate_model(upscale_fn, args.data, args.scale, args.degradation, name, progress=True,
                            self_ensemble=getattr(args, "self_ensemble", False))
    print(format_report(result))
    if args.json:
        write_json(args.json, result)
    return result


def check_args(args) -> None:
    """SettingError for a flag the evaluation cannot use, before any model is loaded."""
    check_scale(args.scale)
    check_model_spec(args.model)
    check_image_folder(args.data)
    check_output_file(args.json, "--json")


def main(argv=None) -> int:
    parser = CommandParser(prog="python -m common.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="bicubic", help="bicubic, nearest or a checkpoint path")
    add_common_arguments(parser)
    add_self_ensemble_argument(parser)
    args = parser.parse_args(argv)
    try:
        check_args(args)
    except SettingError as exc:
        return report(exc)
    try:
        fn, name = model_upscaler(args.model, args.scale, chosen_precision(args.precision), args.backend)
        run(fn, name, args)
    except (ImageError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
