"""The ESRGAN chapter as the library sees it (common.registry; listed in setup.py's entry points)."""
from pathlib import Path

from common.registry import Architecture, Chapter
from esrgan.config import PRESETS, ESRGANConfig

WEIGHTS = Path(__file__).resolve().parent / "weights"


def run_name(preset: str, config: ESRGANConfig) -> str:
    """esrgan-psnr / esrgan-gan for the paper's presets, else esrgan-<preset>-<stage>."""
    return f"esrgan-{config.stage}" if preset in ("psnr", "gan") else f"esrgan-{preset}-{config.stage}"


CHAPTER = Chapter(
    name="esrgan",
    display_name="ESRGAN",
    architectures={
        "rrdb_generator": Architecture("esrgan.models:rrdb_generator"),
        "esrgan_discriminator": Architecture("esrgan.models:discriminator", role="discriminator"),
    },
    config=ESRGANConfig,
    presets=PRESETS,
    # the chapter's GAN model when shipped, else its PSNR-oriented generator
    shipped_weights=(str(WEIGHTS / "esrgan_x4.h5"), str(WEIGHTS / "rrdb_x4.h5")),
    default_scale=4,
    run_name=run_name,
)
