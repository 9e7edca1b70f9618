"""Upscale images with the SRGAN chapter's generator (SRResNet architecture, x4).

    python -m srgan.upscale INPUT... -o OUTPUT [--weights FILE] [--tile N] [--outscale F]

See common/upscale_cli.py for every option.
"""
import sys

from srgan.chapter import CHAPTER


def main(argv=None) -> int:
    return CHAPTER.upscale(argv)  # its shipped weights and default scale come from the chapter's spec


if __name__ == "__main__":
    sys.exit(main())
