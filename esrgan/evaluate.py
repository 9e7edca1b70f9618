"""Evaluate an ESRGAN-chapter generator with the field's protocol (PSNR/SSIM on Y), optionally NIQE.

    python -m esrgan.evaluate --data ../shared/data/Set5 --scale 4 [--weights FILE] [--json OUT] [--niqe] \
        [--self-ensemble] [--precision float32|bfloat16|auto] [--backend auto|tensorflow|openvino|onnxruntime]

--weights is a checkpoint (default esrgan/weights/rrdb_x4.h5) or a named weight source of
common.checkpoints.load_model (krasserm:srresnet, krasserm:srgan). The JSON is the common
evaluation JSON; with --niqe every image gets "niqe" (no-reference, lower is better; MATLAB's niqe
on the Y channel of the 8-bit SR image, `scale` border pixels cropped) and the result its mean.
Every result has "false_colour" beside PSNR/SSIM (common.metrics.false_colour: the chroma detail the
output has where HR has none, lower is better): NIQE rewards high-frequency texture, amplified noise
and colour lattices included, so read the two together.
"""
import sys
from pathlib import Path

import numpy as np

import common  # noqa: F401  (quiet TensorFlow import)
from common.checkpoints import CheckpointError, checkpoint_paths, load_model
from common.config_cli import CommandParser, SettingError, check_checkpoint, report
from common.degradations import DEGRADATIONS
from common.evaluate import (add_backend_argument, add_precision_argument, add_self_ensemble_argument, announce,
                             check_image_folder, check_model_scale, check_output_file, check_scale,
                             chosen_precision, evaluate_model, format_report)
from common.files import write_json
from common.images import ImageError, to_uint8
from common.upscaler import Upscaler

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "rrdb_x4.h5"
MISSING_HINT = ("train one (python -m esrgan.train --stage psnr|gan --export FILE), convert the official "
                "weights (python -m esrgan.convert RRDB_ESRGAN_x4.pth -o FILE) or pass --weights FILE")


def weights_spec(spec=None) -> str:
    """The checkpoint or named weight source to use (default DEFAULT_WEIGHTS, which must exist)."""
    if spec is None:
        if not any(p.is_file() for p in checkpoint_paths(DEFAULT_WEIGHTS)[:2]):
            raise CheckpointError(f"no weights given and {DEFAULT_WEIGHTS} not found: {MISSING_HINT}")
        spec = str(DEFAULT_WEIGHTS)
    return spec


def display_name(spec: str, meta: dict) -> str:
    return meta.get("display_name") or (spec if ":" in spec else Path(spec).stem)


def load_weights(spec=None):
    """(model, meta, name) for a checkpoint or a named weight source (default DEFAULT_WEIGHTS)."""
    spec = weights_spec(spec)
    model, meta = load_model(spec)
    return model, meta, display_name(spec, meta)


def image_niqe(sr, scale: int):
    """NIQE of an SR image as evaluated (8-bit, `scale` border pixels cropped); None if undefined."""
    from common.metrics import niqe

    try:
        return niqe(to_uint8(sr), crop_border=scale)
    except ValueError:  # too small (fewer than two 96x96 blocks) or flat
        return None


def mean_or_none(values):
    finite = [v for v in values if v is not None]
    return float(np.mean(finite)) if finite else None


def evaluate(model, meta, data_dir, scale: int, degradation: str = "bicubic", name: str = "model",
             with_niqe: bool = False, progress: bool = False, self_ensemble: bool = False,
             precision: str = "float32", backend: str = "auto") -> dict:
    """The common evaluation dict of `model` (a Keras model with its `meta`, a checkpoint spec with
    meta None, or an Upscaler), plus "niqe" per image and mean when `with_niqe`; `self_ensemble`
    scores the mean over each image's 8 flips/rotations."""
    if isinstance(model, Upscaler):
        upscaler = model
        upscaler.self_ensemble = self_ensemble
    else:
        upscaler = Upscaler(model, meta, backend=backend, precision=precision, self_ensemble=self_ensemble)
    check_model_scale(name, upscaler.meta, scale)
    scores = []

    def upscale_fn(lr):
        sr = upscaler(lr)
        if with_niqe:
            scores.append(image_niqe(sr, scale))
        return sr

    result = evaluate_model(upscale_fn, data_dir, scale, degradation, name=name, progress=progress,
                            backend=upscaler.backend)
    if self_ensemble:  # done inside upscale_fn, so that NIQE sees the ensembled image
        result["self_ensemble"] = True
    if with_niqe:
        for row, score in zip(result["per_image"], scores):
            row["niqe"] = score
        result["niqe"] = mean_or_none(scores)
    return result


def main(argv=None) -> int:
    parser = CommandParser(prog="python -m esrgan.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="folder of HR images (e.g. ../shared/data/Set5)")
    parser.add_argument("--scale", type=int, default=4, help="upscaling factor (default 4)")
    parser.add_argument("--weights", help="checkpoint (default esrgan/weights/rrdb_x4.h5) "
                        "or krasserm:srresnet | krasserm:srgan")
    parser.add_argument("--degradation", default="bicubic", choices=DEGRADATIONS)
    parser.add_argument("--json", help="write the results here (the common evaluation JSON)")
    add_precision_argument(parser)
    add_backend_argument(parser)
    parser.add_argument("--niqe", action="store_true", help="also compute NIQE (no-reference; lower is better)")
    add_self_ensemble_argument(parser)
    args = parser.parse_args(argv)
    try:
        check_scale(args.scale)
        check_image_folder(args.data)
        if args.weights is None:
            try:
                weights_spec(None)
            except CheckpointError as exc:
                raise SettingError("--weights", str(exc)) from None
        else:
            check_checkpoint("--weights", args.weights)
        check_output_file(args.json, "--json")
    except SettingError as exc:
        return report(exc)
    try:
        spec = weights_spec(args.weights)
        upscaler = Upscaler(spec, backend=args.backend, precision=chosen_precision(args.precision))
        announce(upscaler)
        result = evaluate(upscaler, None, args.data, args.scale, args.degradation, display_name(spec, upscaler.meta),
                          args.niqe, progress=True, self_ensemble=args.self_ensemble)
    except (ImageError, CheckpointError, ValueError, OSError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(result))
    if args.niqe:
        def shown(value, digits=3):
            return "n/a" if value is None else f"{value:.{digits}f}"

        per_image = ", ".join(f"{r['name']} {shown(r['niqe'])}" for r in result["per_image"])
        print(f"{'NIQE':<16} {shown(result['niqe'], 4)}  (lower is better; {per_image})")
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
