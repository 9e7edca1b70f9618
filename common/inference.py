"""Compatibility names: the inference code lives in common.model_analysis (what a model does),
common.tiling (tiles, blending, self-ensemble), common.backends (engines) and common.upscaler
(the Upscaler object and the one-call `upscale`)."""
from common.backends import _compiled  # noqa: F401
from common.model_analysis import (  # noqa: F401
    BICUBIC_CONTEXT,
    DEFAULT_MARGIN,
    DEFAULT_MARGIN_PRE,
    InferenceError,
    ModelInfo,
    Spec,
    analyze_model,
    model_spec,
    spec_from_info,
)
from common.tiling import (  # noqa: F401
    MAX_TILE,
    MIN_TILE,
    auto_tile_size,
    available_memory,
    choose_tiling,
    dihedral,
    geometric_self_ensemble,
    undo_dihedral,
    upsample_bicubic_strips,
)
from common.upscaler import UpscaleOptions, Upscaler, upscale  # noqa: F401
