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
        "srvgg_compact": Architecture("esrgan.models:srvgg_compact"),
        "esrgan_discriminator": Architecture("esrgan.models:discriminator", role="discriminator"),
    },
    config=ESRGANConfig,
    presets=PRESETS,
    # the interpolation toward rrdb_x4 (esrgan_x4.h5 alone draws more false colour than krasserm's SRGAN),
    # else the GAN model, else the PSNR-oriented generator
    shipped_weights=(str(WEIGHTS / "esrgan_interp_x4.h5"), str(WEIGHTS / "esrgan_x4.h5"), str(WEIGHTS / "rrdb_x4.h5")),
    default_scale=4,
    run_name=run_name,
)
