"""Command line: `python -m common.mos build|serve|analyze` (see common/mos/__init__.py)."""
import argparse
import sys
from pathlib import Path

import common  # noqa: F401  (quiet TensorFlow import)
from common.degradations import DEGRADATIONS
from common.images import ImageError
from common.mos.study import StudyError

METHOD_HELP = ("NAME=SPEC (repeat; the order is the table's): SPEC is hr (the original), bicubic, "
               "nearest, a checkpoint path or a named source such as krasserm:srgan")


def build(args) -> int:
    from common.mos.build import build_study, parse_calibration, parse_method

    methods = [parse_method(text) for text in args.method]
    calibration = ([] if args.no_calibration else
                   [parse_calibration(t) for t in args.calibrate] if args.calibrate else None)
    manifest = build_study(args.data, args.scale, methods, args.out, calibration, args.calibration_data,
                           args.calibration_images, args.degradation, args.seed)
    print(f"{args.out}: {len(manifest['items'])} images x {len(methods)} methods = "
          f"{len(manifest['trials'])} ratings per rater, after {len(manifest['calibration'])} calibration images")
    print(f"serve it with: python -m common.mos serve {args.out}")
    return 0


def serve(args) -> int:
    from common.mos.server import make_server

    try:
        server = make_server(args.study, args.host, args.port, quiet=args.quiet)
    except OSError as exc:
        if exc.filename:
            raise
        raise ValueError(f"{args.host}:{args.port}: {exc.strerror or exc}") from None
    host, port = server.server_address[:2]
    print(f"serving {args.study} at http://{host}:{port}/  (ratings: {Path(args.study) / 'ratings.csv'}; "
          "Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def analyze(args) -> int:
    from common.mos.analyze import analyze_study, markdown, write_outputs

    study = Path(args.study)
    summary = analyze_study(study)
    figure = args.figure or study / "mos.png"
    table = args.markdown or study / "mos.md"
    write_outputs(summary, figure, table, args.json)
    print(markdown(summary), end="")
    if summary["unreadable_rows"]:
        print(f"({summary['unreadable_rows']} unreadable rows of ratings.csv skipped)")
    print(f"figure: {figure}\ntable: {table}" + (f"\njson: {args.json}" if args.json else ""))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.mos", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("build", help="upscale the images with every method; write the study folder")
    p.add_argument("--data", required=True, help="folder of HR test images (e.g. ../shared/data/Set5)")
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--method", action="append", required=True, help=METHOD_HELP)
    p.add_argument("--out", required=True, help="the study folder to create (must not exist or be empty)")
    p.add_argument("--degradation", default="bicubic", choices=DEGRADATIONS)
    p.add_argument("--calibrate", action="append", default=[], metavar="METHOD=SCORE",
                   help="a method shown first with its intended score (repeat); default: the methods "
                        "with spec nearest as 1 and hr as 5, as in the SRGAN paper")
    p.add_argument("--no-calibration", action="store_true")
    p.add_argument("--calibration-data", help="images for calibration (default: --data; better a "
                                              "separate set, e.g. ../shared/data/BSD200)")
    p.add_argument("--calibration-images", type=int, default=2, help="how many of them (default 2)")
    p.add_argument("--seed", type=int, help="seed of the per-rater orders (default random; kept in the manifest)")
    p.set_defaults(run=build)

    p = commands.add_parser("serve", help="serve the rating page; ratings go to STUDY/ratings.csv")
    p.add_argument("study")
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    p.add_argument("--port", type=int, default=8000, help="default 8000; 0 = any free port")
    p.add_argument("--quiet", action=argparse.BooleanOptionalAction, default=False,
                   help="do not log each request")
    p.set_defaults(run=serve)

    p = commands.add_parser("analyze", help="MOS, SD, 95 %% CI, n; Wilcoxon per pair; figure and table")
    p.add_argument("study")
    p.add_argument("--json", help="write the analysis here as JSON")
    p.add_argument("--figure", help="PNG path (default STUDY/mos.png)")
    p.add_argument("--markdown", help="Markdown table path (default STUDY/mos.md)")
    p.set_defaults(run=analyze)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (StudyError, ImageError, ValueError, OSError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename or 'server'}: {exc.strerror}"
    return (str(exc) or type(exc).__name__).splitlines()[0]


if __name__ == "__main__":
    sys.exit(main())
