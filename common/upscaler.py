"""One inference object: `Upscaler`, built once from a checkpoint (or a Keras model and its metadata)
with its options, then called per image (the shape of Real-ESRGAN's RealESRGANer).

    from common.upscaler import Upscaler
    upscaler = Upscaler("esrgan/weights/rrdb_x4.h5", backend="auto", tile=256)
    sr = upscaler(image)      # float32 (H, W, 3) or (H, W[, 1]) in [0, 1] -> (H*4, W*4, ...)

The backend (common.backends: TensorFlow, OpenVINO, ONNX Runtime; "auto" = OpenVINO when installed)
runs the model; common.tiling cuts the image into blended tiles and common.model_analysis says how
to feed the model (scale, colour mode, value ranges, context). `upscale(image, model, meta, ...)`
is the one-call form on TensorFlow, for models that change between calls (validation in training).
Every call mirrors the image border (the model never meets its zero padding there), and an RGB image
with R=G=B everywhere is upscaled as grey and comes back grey.
"""
import dataclasses

import numpy as np

from common import backends
from common.model_analysis import InferenceError, spec_from_info
from common.tiling import frame, geometric_self_ensemble, release, tiled_upscale

BORDER = 8  # LR px of mirrored border at most (border chroma on Set14: the same as with 16)


@dataclasses.dataclass(frozen=True)
class UpscaleOptions:
    """How to run a model: what the command lines' --backend/--precision/--tile... flags set."""

    backend: str = "auto"  # auto | tensorflow | openvino | onnxruntime
    precision: str = "float32"  # float32 | bfloat16 | auto (common.precision)
    tile: int | None = None  # LR tile side; None: from free memory; 0: whole image
    tile_overlap: int | None = None  # LR context px per tile side; None: the model's receptive field
    batch_size: int | None = None  # tiles per model call
    self_ensemble: bool = False  # mean over the 8 flips/rotations (8x the time)


def _precision(name: str) -> tuple[str, str]:
    if name == "float32":  # the common case needs no hardware probe (nor TensorFlow)
        return "float32", "precision: float32"
    from common.precision import resolve_precision

    return resolve_precision(name)


class Upscaler:
    """A model ready to upscale images; call it on each image.

    model_or_checkpoint: a Keras model, a checkpoint path, a named source (krasserm:srgan) or a
        backends.Prepared. meta: the model's metadata (default: the checkpoint's; {} for a model).
    backend: auto | tensorflow | openvino | onnxruntime. precision: float32 | bfloat16 | auto.
    tile, tile_overlap, batch_size, self_ensemble: see UpscaleOptions. scale: the scale to assume
        when the metadata has none (pre-upsampling models without their JSON).
    Attributes: backend and precision used, scale, spec, meta, description (one line naming the
    backend, for the user), precision_note (one line saying which precision and why).
    """

    def __init__(self, model_or_checkpoint, meta=None, backend="auto", precision="float32", tile=None,
                 tile_overlap=None, batch_size=None, self_ensemble=False, scale=None):
        used, self.precision_note = _precision(precision)
        if isinstance(model_or_checkpoint, backends.Prepared):
            prepared = model_or_checkpoint
        else:
            prepared = backends.prepare(model_or_checkpoint, backend, used)
        meta = dict(prepared.meta if meta is None else meta)
        if scale is not None and meta.get("scale") is None:
            meta["scale"] = scale
        self.prepared, self.meta = prepared, meta
        self.spec = spec_from_info(prepared.info, meta)
        self.tile, self.tile_overlap, self.batch_size = tile, tile_overlap, batch_size
        self.self_ensemble = bool(self_ensemble)

    @classmethod
    def from_options(cls, model_or_checkpoint, options: UpscaleOptions, meta=None, scale=None) -> "Upscaler":
        return cls(model_or_checkpoint, meta, scale=scale, **dataclasses.asdict(options))

    @staticmethod
    def resolve_precision(name: str) -> str:
        """float32 | bfloat16 for float32 | bfloat16 | auto (auto probes the hardware)."""
        return _precision(name)[0]

    backend = property(lambda self: self.prepared.backend)
    precision = property(lambda self: self.prepared.precision)
    scale = property(lambda self: self.spec.scale)
    description = property(lambda self: self.prepared.description)

    def __call__(self, image, progress=None) -> np.ndarray:
        """Super-resolve a float RGB (H, W, 3) or grey (H, W[, 1]) image in [0, 1].

        progress: optional callable(done, total) over tiles (with self_ensemble: over the 8 passes).
        Returns float32 (H*s, W*s, C) in [0, 1] with the input's channel count (2-D for 2-D input).
        """
        image = np.asarray(image, dtype=np.float32)
        flat = image.ndim == 2
        if flat:
            image = image[..., None]
        if image.ndim != 3 or image.shape[2] not in (1, 3):
            raise InferenceError(f"expected an (H, W, 3) RGB or (H, W, 1) grey image, got shape {image.shape}")

        # R=G=B everywhere: run the grey path (the model's output projected to luma, as for a 1-channel
        # file), so GAN chroma noise cannot colour a grey image and both files give the same pixels.
        grey_rgb = image.shape[2] == 3 and is_grey(image)
        if grey_rgb:
            image = image[..., :1]
        # Mirror the border so the model sees image-like context there instead of its convolutions'
        # zeros (srgan_x4 painted a coloured column at the left edge). Symmetric, as MATLAB's imresize
        # that made the training LR: bicubic stages (pre-upsampling, Y models' Cb/Cr) stay exact.
        h, w = image.shape[:2]
        border = min(self.spec.margin, BORDER) if min(h, w) >= self.spec.min_size else 0  # else tiling says why
        if border:
            image = np.pad(image, ((border, border), (border, border), (0, 0)), mode="symmetric")

        tile = 0 if self.tile and max(h, w) <= self.tile else self.tile  # the border adds no second tile

        def one_pass(im, progress=None):
            return tiled_upscale(im, self.prepared.runner, self.spec, tile, self.tile_overlap, self.batch_size,
                                 progress)

        out = geometric_self_ensemble(one_pass, image, progress) if self.self_ensemble else one_pass(image, progress)
        if border:
            b = border * self.spec.scale
            out = out[b : b + h * self.spec.scale, b : b + w * self.spec.scale]
        if flat:
            return out[..., 0]
        return _to_rgb(out) if grey_rgb else out


def _to_rgb(grey: np.ndarray, band: int = 256) -> np.ndarray:
    """(H, W, 1) -> (H, W, 3) by rows, into a frame that is disk-backed when large (bounded memory)."""
    rgb = frame((*grey.shape[:2], 3), grey.dtype, fill_zero=False)
    for r in range(0, grey.shape[0], band):
        rgb[r : r + band] = grey[r : r + band]
        release(grey, r, r + band)
    return rgb


def is_grey(image: np.ndarray) -> bool:
    """True if an (H, W, 3) image has R = G = B everywhere (a coarse grid first: colour fails fast)."""
    coarse = image[::16, ::16]
    if not (np.array_equal(coarse[..., 0], coarse[..., 1]) and np.array_equal(coarse[..., 0], coarse[..., 2])):
        return False
    return all(np.array_equal(image[r : r + 256, :, 0], image[r : r + 256, :, c])
               for r in range(0, image.shape[0], 256) for c in (1, 2))


def upscale(image, model, meta=None, tile=None, tile_overlap=None, batch_size=None, progress=None,
            precision="float32", self_ensemble: bool = False, backend: str = "tensorflow"):
    """One image through `model` (a Keras model whose weights may change between calls) on TensorFlow;
    the arguments are those of Upscaler. Build an Upscaler to run many images on a faster backend."""
    upscaler = Upscaler(model, meta or {}, backend, precision or "float32", tile, tile_overlap, batch_size, self_ensemble)
    return upscaler(image, progress)
