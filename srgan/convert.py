"""Convert published SRGAN weights to the project's checkpoint format (.h5 + .weights.h5 + .json).

    python -m srgan.convert krasserm:srresnet -o srresnet_krasserm_x4.h5
    python -m srgan.convert krasserm:srgan -o srgan_krasserm_x4.h5
"""
import argparse
import sys

import common  # noqa: F401  (quiet TensorFlow import)
from common.checkpoints import CheckpointError, save_model
from srgan.evaluate import resolve_weights


def convert(spec: str, out_path) -> dict:
    model, meta = resolve_weights(spec)
    save_model(model, str(out_path), meta)
    return meta


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m srgan.convert", description=__doc__.split("\n")[0])
    parser.add_argument("spec", help="krasserm:srresnet | krasserm:srgan")
    parser.add_argument("-o", "--output", required=True, help="output .h5 path (the .json is written beside it)")
    args = parser.parse_args(argv)
    try:
        meta = convert(args.spec, args.output)
    except (CheckpointError, ImportError, ValueError, OSError) as exc:  # incl. KrassermNotInstalled
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output} ({meta['architecture']} x{meta['scale']}, "
          f"input {meta['input_range']}, output {meta['output_range']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
