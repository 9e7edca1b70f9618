"""The SRGAN chapter as the library sees it (common.registry; listed in setup.py's entry points)."""
from pathlib import Path

from common.registry import Architecture, Chapter
from srgan.config import PRESETS, SRGANConfig, variant_name

WEIGHTS = Path(__file__).resolve().parent / "weights"


def run_name(preset: str, config: SRGANConfig) -> str:
    """The variant (srresnet-mse, srgan-vgg54, ...), after the preset when that is another name."""
    variant = variant_name(config)
    return variant if preset == variant else f"{preset}-{variant}"


CHAPTER = Chapter(
    name="srgan",
    display_name="SRGAN",
    architectures={
        "srresnet": Architecture("srgan.models:srresnet", output_range=(-1, 1)),
        "srgan_discriminator": Architecture("srgan.models:discriminator", role="discriminator",
                                            input_range=(-1, 1)),
    },
    config=SRGANConfig,
    presets=PRESETS,
    # the chapter's GAN model when shipped, else its PSNR-oriented generator
    shipped_weights=(str(WEIGHTS / "srgan_x4.h5"), str(WEIGHTS / "srresnet_x4.h5")),
    default_scale=4,
    run_name=run_name,
    weight_sources={"krasserm": "srgan.krasserm:load_krasserm"},  # krasserm:srresnet, krasserm:srgan
)
