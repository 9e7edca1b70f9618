"""The SRCNN chapter as the library sees it (common.registry; listed in setup.py's entry points)."""
from pathlib import Path

from common.registry import Architecture, Chapter
from srcnn.config import PRESETS, SRCNNConfig

WEIGHTS = Path(__file__).resolve().parent / "weights"


def run_name(preset: str, config: SRCNNConfig) -> str:
    """srcnn_x3_adam, srcnn_x234_paper, ..."""
    return f"srcnn_x{''.join(map(str, config.scales))}_{preset}"


CHAPTER = Chapter(
    name="srcnn",
    display_name="SRCNN",
    # on the bicubic-upscaled Y channel (a model trained on RGB says color "rgb" in its JSON)
    architectures={"srcnn": Architecture("srcnn.models:srcnn", upsampling="pre", color="y")},
    config=SRCNNConfig,
    presets=PRESETS,
    shipped_weights=(str(WEIGHTS / "srcnn_x{scale}.h5"),),
    default_scale=3,
    run_name=run_name,
    foreign_loaders=("srcnn.thesis:load_thesis_checkpoint",),  # the thesis's own Keras 2 file
)
