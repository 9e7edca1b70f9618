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
from common.data import eval_pairs
from common.degradations import DEGRADATIONS, imresize
from common.files import write_json
from common.images import ImageError, to_uint8
from common.metrics import false_colour, psnr, ssim
from common.backends import BACKENDS
from common.precision import PRECISIONS, resolve_precision

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
    if upscaler.meta.get("scale") not in (None, scale):
        raise ValueError(f"{model_spec}: model is x{upscaler.meta['scale']}, not x{scale}")
    announce(upscaler)
    return upscaler, Path(model_spec).stem


def announce(upscaler) -> None:
    """Say on stderr which backend runs a model (once per model loaded)."""
    print(upscaler.description, file=sys.stderr)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder of HR images (e.g. ../shared/data/Set5)")
    parser.add_argument("--scale", type=int, required=True)
    parser.add_argument("--degradation", default="bicubic", choices=DEGRADATIONS)
    parser.add_argument("--json", help="write the results here as JSON")
    add_precision_argument(parser)
    add_backend_argument(parser)


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="auto", choices=BACKENDS,
                        help="engine that runs the model: auto = openvino when installed, else tensorflow "
                             "(the reference); converted models are cached beside the checkpoint")


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", default="float32", choices=PRECISIONS,
                        help="model compute precision; auto = bfloat16 where the CPU/GPU runs it "
                             "natively, else float32 (default float32)")


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="bicubic", help="bicubic, nearest or a checkpoint path")
    add_common_arguments(parser)
    add_self_ensemble_argument(parser)
    args = parser.parse_args(argv)
    try:
        fn, name = model_upscaler(args.model, args.scale, chosen_precision(args.precision), args.backend)
        run(fn, name, args)
    except (ImageError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
