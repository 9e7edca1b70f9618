"""Evaluate SRCNN against bicubic, the paper's way.

    python -m srcnn.evaluate --data ../shared/data/Set5 --scale 3 [--weights FILE] [--json OUT] \
        [--precision float32|bfloat16|auto] [--backend auto|tensorflow|openvino|onnxruntime] [--self-ensemble]
    python -m srcnn.evaluate --table [--self-ensemble]   # bicubic vs SRCNN (and SRCNN+), Set5 + Set14, x2-x4
    python -m srcnn.evaluate --data DIR --scale 2 --weights ../shared/reference-models/srcnn_v4.h5 \
        --protocol thesis                        # the thesis checkpoint on its own degradation

--protocol standard: LR by the named degradation (MATLAB bicubic by default), the model's
input is its bicubic upscaling. --protocol thesis: LR by nearest-neighbour decimation, the
input is its bicubic upscaling saved as JPEG (q75), as the thesis's training data was made.
"""
import sys
from pathlib import Path

import common  # noqa: F401
from common import evaluate as ev
from common.checkpoints import CheckpointError, load_model
from common.config_cli import CommandParser, SettingError, check_checkpoint, check_data_folder, report
from common.degradations import DEGRADATIONS
from common.files import write_json
from common.images import ImageError
from common.backends import prepare
from common.paths import DATA, resolve_data
from common.upscaler import Upscaler
from srcnn.chapter import CHAPTER
from srcnn.thesis import is_keras2_srcnn, load_thesis_checkpoint, thesis_upsample

THESIS_CHECKPOINT = Path(__file__).resolve().parents[2] / "shared" / "reference-models" / "srcnn_v4.h5"
PROTOCOLS = ("standard", "thesis")


def default_weights(scale: int) -> Path:
    return CHAPTER.default_weights(scale)


def load_srcnn(weights, scale: int):
    """(model, meta) of our checkpoints or of the thesis's Keras-2 file."""
    if is_keras2_srcnn(weights):
        return load_thesis_checkpoint(weights, scale)
    return load_model(weights)


def srcnn_upscaler(weights, scale: int, protocol: str = "standard", precision: str = "float32",
                   backend: str = "auto"):
    """(LR image -> SR image, the Upscaler) for our checkpoints or the thesis's Keras-2 file."""
    prepared = prepare(weights, backend, precision)
    meta = dict(prepared.meta)
    if is_keras2_srcnn(weights):
        meta["scale"] = scale  # one set of weights for any scale (load_thesis_checkpoint's argument)
    if protocol == "thesis":
        # the input is already upscaled (and JPEG-compressed)
        upscaler = Upscaler(prepared, {**meta, "scale": 1}, precision=precision)
        return (lambda lr: upscaler(thesis_upsample(lr, meta["scale"]))), upscaler
    upscaler = Upscaler(prepared, meta, precision=precision)
    return upscaler, upscaler


def evaluate(weights, data, scale: int, protocol: str = "standard", degradation="bicubic",
             name=None, precision: str = "float32", self_ensemble: bool = False, backend: str = "auto") -> dict:
    if protocol == "thesis":
        degradation = "nearest"
    fn, upscaler = srcnn_upscaler(weights, scale, protocol, precision, backend)
    ev.announce(upscaler)
    result = ev.evaluate_model(fn, resolve_data(data), scale, degradation, name or Path(weights).stem,
                               self_ensemble=self_ensemble, backend=upscaler.backend)
    if protocol == "thesis":
        result["degradation"] = "thesis (nearest, bicubic up, JPEG q75)"
    return result


def bicubic(data, scale: int, protocol: str = "standard") -> dict:
    if protocol == "thesis":
        fn = lambda lr: thesis_upsample(lr, scale)  # noqa: E731
        result = ev.evaluate_model(fn, resolve_data(data), scale, "nearest", "bicubic")
        result["degradation"] = "thesis (nearest, bicubic up, JPEG q75)"
        return result
    return ev.evaluate_model(ev.bicubic_upscaler(scale), resolve_data(data), scale, "bicubic", "bicubic")


def table(datasets=("Set5", "Set14"), scales=(2, 3, 4), thesis_weights=THESIS_CHECKPOINT,
          precision: str = "float32", self_ensemble: bool = False, backend: str = "auto") -> list[dict]:
    """Bicubic vs SRCNN rows (the SRCNN paper's Table 2 layout) plus the thesis checkpoint;
    with `self_ensemble` a "srcnn+" row (8 flips/rotations averaged) after each shipped one."""
    rows = []
    for data in datasets:
        for scale in scales:
            rows.append(bicubic(data, scale))
            if default_weights(scale).exists():
                rows.append(evaluate(default_weights(scale), data, scale, name="srcnn (shipped)",
                                     precision=precision, backend=backend))
                if self_ensemble:
                    rows.append(evaluate(default_weights(scale), data, scale, name="srcnn+ (shipped)",
                                         precision=precision, self_ensemble=True, backend=backend))
        if Path(thesis_weights).exists():
            for protocol in PROTOCOLS:
                if protocol == "thesis":
                    rows.append(bicubic(data, 2, protocol))
                rows.append(evaluate(thesis_weights, data, 2, protocol, name="srcnn_v4 (thesis)",
                                     precision=precision, backend=backend))
    return rows


def format_table(rows: list[dict]) -> str:
    lines = [f"{'data':<7}{'scale':>6}  {'method':<20}{'degradation':<42}{'PSNR':>8}{'SSIM':>9}"]
    for r in rows:
        lines.append(f"{r['dataset']:<7}{'x' + str(r['scale']):>6}  {r['model']:<20}"
                     f"{r['degradation']:<42}{r['psnr']:8.2f}{r['ssim']:9.4f}")
    return "\n".join(lines)


def check_args(args) -> None:
    """SettingError for a flag the evaluation cannot use, before any model is loaded."""
    if args.table:
        ev.check_output_file(args.json, "--json")
        return
    if not args.data:
        raise SettingError("--data", "required (or use --table)")
    ev.check_scale(args.scale)
    check_data_folder("--data", args.data, DATA)
    ev.check_image_folder(resolve_data(args.data))
    if args.weights:
        check_checkpoint("--weights", args.weights)
    elif not default_weights(args.scale).exists():
        raise SettingError("--weights", f"no shipped x{args.scale} model ({default_weights(args.scale)}): "
                           "pass --weights FILE")
    ev.check_output_file(args.json, "--json")


def main(argv=None) -> int:
    parser = CommandParser(prog="python -m srcnn.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--table", action="store_true", help="bicubic vs SRCNN on Set5/Set14, x2-x4")
    parser.add_argument("--data", help="folder of HR images, or a data set name under ../shared/data")
    parser.add_argument("--scale", type=int, default=3, help=f"upscaling factor (1 to {ev.MAX_SCALE}; default 3)")
    parser.add_argument("--weights", help="checkpoint (default: the shipped srcnn_x{scale}.h5)")
    parser.add_argument("--protocol", default="standard", choices=PROTOCOLS)
    parser.add_argument("--degradation", default="bicubic", choices=DEGRADATIONS)
    parser.add_argument("--json")
    ev.add_precision_argument(parser)
    ev.add_backend_argument(parser)
    ev.add_self_ensemble_argument(parser)
    args = parser.parse_args(argv)
    try:
        check_args(args)
    except SettingError as exc:
        return report(exc)
    try:
        precision = ev.chosen_precision(args.precision)
        if args.table:
            rows = table(precision=precision, self_ensemble=args.self_ensemble, backend=args.backend)
            print(format_table(rows))
            if args.json:
                write_json(args.json, rows)
            return 0
        weights = args.weights or default_weights(args.scale)
        result = evaluate(weights, args.data, args.scale, args.protocol, args.degradation,
                          precision=precision, self_ensemble=args.self_ensemble, backend=args.backend)
        print(ev.format_report(result))
        if args.json:
            write_json(args.json, result)
    except (CheckpointError, ImageError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
