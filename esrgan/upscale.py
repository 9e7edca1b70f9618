"""Upscale images with the ESRGAN chapter's RRDB generator (x4).

    python -m esrgan.upscale INPUT... -o OUTPUT [--weights FILE] [--tile N] [--outscale F]

See common/upscale_cli.py for every option.
"""
import common  # noqa: F401  (quiet TensorFlow import)

import sys
from pathlib import Path

from common import upscale_cli

WEIGHTS = Path(__file__).resolve().parent / "weights"
# The chapter's GAN model (ESRGAN) when shipped, else its PSNR-oriented generator (rrdb_x4.h5).
DEFAULT_WEIGHTS = WEIGHTS / "esrgan_x4.h5" if (WEIGHTS / "esrgan_x4.h5").is_file() else WEIGHTS / "rrdb_x4.h5"
DEFAULT_SCALE = 4


def main(argv=None) -> int:
    return upscale_cli.main(argv, chapter="esrgan", default_weights=DEFAULT_WEIGHTS, default_scale=DEFAULT_SCALE)


if __name__ == "__main__":
    sys.exit(main())
