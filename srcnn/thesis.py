"""The thesis author's own SRCNN checkpoint (Keras 2, `srcnn_v4.h5`) and its degradation.

Keras 3 cannot `load_model` that file, but it is a Sequential of three Conv2D layers whose
configuration and weights are plain HDF5: we rebuild it with `srcnn()` and copy the weights.
Its pixels are scaled as (p - 127) / 128 on input and output, so in [0, 1] units the model's
range is [-127/128, 1].

The thesis made its LR patches with PIL: `resize((63, 63))` of 127x127 crops with the default
filter of the time (nearest), bicubic back up, saved as JPEG (quality 75). On whole images at x2
that is our "nearest" degradation followed by `thesis_upsample`.
"""
import json
from pathlib import Path

import cv2
import h5py
import numpy as np

from common.degradations import imresize
from common.images import to_uint8
from srcnn.models import srcnn

THESIS_RANGE = [-127 / 128, 128 / 128]
JPEG_QUALITY = 75


class NotAThesisCheckpoint(ValueError):
    pass


def is_keras2_srcnn(path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            version = f.attrs.get("keras_version", b"")
            version = version.decode() if isinstance(version, bytes) else str(version)
            config = json.loads(f.attrs["model_config"])
    except (OSError, KeyError, ValueError):
        return False
    return version.startswith("2.") and config.get("class_name") == "Sequential"


def load_thesis_checkpoint(path, scale: int = 2):
    """Rebuild a Keras-2 three-conv SRCNN file as our model; returns (model, meta)."""
    path = Path(path)
    if not is_keras2_srcnn(path):
        raise NotAThesisCheckpoint(f"{path}: not a Keras 2 Sequential SRCNN file")
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        layers = config["config"]
        layers = layers["layers"] if isinstance(layers, dict) else layers
        convs = [layer["config"] for layer in layers if layer["class_name"] == "Conv2D"]
        if len(convs) != 3:
            raise NotAThesisCheckpoint(f"{path}: expected 3 Conv2D layers, found {len(convs)}")
        weights = []
        for conv in convs:
            group = f["model_weights"][conv["name"]][conv["name"]]
            weights += [group["kernel:0"][()], group["bias:0"][()]]
    args = dict(
        f1=convs[0]["kernel_size"][0], f2=convs[1]["kernel_size"][0], f3=convs[2]["kernel_size"][0],
        n1=convs[0]["filters"], n2=convs[1]["filters"], channels=convs[2]["filters"],
        padding=convs[0]["padding"], output_activation=convs[2]["activation"] if
        convs[2]["activation"] != "linear" else None,
    )
    model = srcnn(**args)
    model.set_weights(weights)
    meta = {
        "architecture": "srcnn", "args": args, "scale": scale, "upsampling": "pre",
        "color": "rgb" if args["channels"] == 3 else "y",
        "input_range": THESIS_RANGE, "output_range": THESIS_RANGE,
        "degradation": "thesis", "training_data": "T91 (127x127 crops, thesis code)",
        "source": str(path),
    }
    return model, meta


def jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """Round-trip an RGB [0, 1] image through JPEG as PIL saved it by default (4:2:0, q75)."""
    bgr = to_uint8(image)[..., ::-1]
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0


def thesis_upsample(lr: np.ndarray, scale: int = 2) -> np.ndarray:
    """The thesis's network input made from a (nearest-downscaled) LR image: bicubic up, JPEG."""
    return jpeg(np.clip(imresize(lr, float(scale)), 0, 1))
