"""Degradations that make LR images from HR ones, selectable by name, in numpy and TF.

Every degradation is an object registered under a name (`make_degradation(name, options)`):
`draw(key)` gives its random parameters from a stateless key, `apply(hr, params, scale)` degrades
one (H, W, 3) float TF image, `obj(hr, key, scale)` does both. The fixed ones below draw nothing;
the real-world ones (`realesrgan`, `bsrgan`) are in common.realworld. A new degradation is a class
with those three methods (a frozen dataclass whose fields are its ranges) and one
`register_degradation` line. Evaluation uses `degrade(hr, scale, name, seed, index)` in numpy.

* ``bicubic``: MATLAB ``imresize(img, 1/scale)`` (Keys cubic, a = -0.5, antialiased) — the
  field's protocol. ``imresize`` below reproduces MATLAB exactly; the TF version uses
  ``tf.image.resize(bicubic, antialias=True)``, which agrees except at the outermost pixels.
* ``gaussian``: Gaussian blur (7x7, sigma 1.6 by default) then keep every `scale`-th pixel
  (the "blur-downscale" wording of the SRCNN/SRGAN papers).
* ``nearest``: nearest-neighbour decimation with PIL's pixel-centre rule (how the thesis's
  own code made its LR images).
"""
import dataclasses
import importlib
import math
import typing

import numpy as np

FIXED = ("bicubic", "gaussian", "nearest")
GAUSSIAN_SIGMA = 1.6
GAUSSIAN_SIZE = 7


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * (
        (ax > 1) & (ax <= 2)
    )


def _resize_weights(in_len: int, out_len: int, scale: float, antialias: bool = True):
    """MATLAB imresize's contributions: (out_len, taps) weights and source indices."""
    kernel_width = 4.0
    if scale < 1 and antialias:
        kernel = lambda x: scale * _cubic(scale * x)  # noqa: E731
        kernel_width /= scale
    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(u[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    keep = np.any(weights != 0, axis=0)
    weights, indices = weights[:, keep], indices[:, keep]
    # Symmetric padding, as MATLAB: mirror indices that fall outside [1, in_len].
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    return weights, indices


def _resize_axis(image: np.ndarray, axis: int, out_len: int, scale: float, antialias: bool):
    weights, indices = _resize_weights(image.shape[axis], out_len, scale, antialias)
    moved = np.moveaxis(image, axis, 0)
    out = np.einsum("ot,ot...->o...", weights, moved[indices])
    return np.moveaxis(out, 0, axis)


def imresize(image: np.ndarray, scale: float | None = None, output_shape=None, antialias=True):
    """MATLAB-exact bicubic ``imresize`` of an (H, W[, C]) array; returns float64.

    Give either a scale factor or an output shape (H, W). No clipping or rounding is done.
    """
    image = np.asarray(image, dtype=np.float64)
    h, w = image.shape[:2]
    if output_shape is None:
        out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
        scale_h = scale_w = scale
    else:
        out_h, out_w = output_shape
        scale_h, scale_w = out_h / h, out_w / w
    # MATLAB resizes the dimension with the smaller factor first.
    order = [(0, out_h, scale_h), (1, out_w, scale_w)]
    if scale_w < scale_h:
        order.reverse()
    for axis, out_len, s in order:
        image = _resize_axis(image, axis, out_len, s, antialias)
    return image


def _gaussian_kernel(size: int = GAUSSIAN_SIZE, sigma: float = GAUSSIAN_SIGMA) -> np.ndarray:
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    k = np.outer(g, g)
    return k / k.sum()


def _nearest_indices(in_len: int, out_len: int) -> np.ndarray:
    """PIL's nearest rule: source pixel under each output pixel's centre."""
    return np.minimum(((np.arange(out_len) + 0.5) * in_len / out_len).astype(np.int64), in_len - 1)


def degrade(hr: np.ndarray, scale: int, name: str = "bicubic", seed: int = 0, index: int = 0,
            options=()) -> np.ndarray:
    """Make the LR image of a float HR image (H, W, C) whose sides are multiples of `scale`.

    The fixed degradations ignore `seed`/`index`; a random one draws its parameters from the key
    (seed, index), so an evaluation set made with one seed is the same on every run."""
    h, w = hr.shape[:2]
    if name == "bicubic":
        lr = imresize(hr, 1.0 / scale)
    elif name == "gaussian":
        import cv2

        blurred = cv2.filter2D(
            np.asarray(hr, np.float64), -1, _gaussian_kernel(), borderType=cv2.BORDER_REFLECT_101
        )
        blurred = blurred.reshape(hr.shape)
        off = (scale - 1) // 2
        lr = blurred[off::scale, off::scale][: h // scale, : w // scale]
    elif name == "nearest":
        lr = hr[_nearest_indices(h, h // scale)][:, _nearest_indices(w, w // scale)]
    else:
        return random_degrade(hr, scale, name, seed, index, options)
    return lr.astype(np.float32)


def upsample_bicubic(lr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB bicubic upsampling by an integer factor (float32, not clipped)."""
    return imresize(lr, float(scale)).astype(np.float32)


# --- TensorFlow versions, for on-the-fly LR generation in tf.data pipelines -----------------


def degrade_tf(hr, scale: int, name: str = "bicubic"):
    """TF degradation of a (H, W, C) or (N, H, W, C) float tensor with static-size-free shapes."""
    import tensorflow as tf

    hr = tf.convert_to_tensor(hr)
    batched = hr.shape.rank == 4
    x = hr if batched else hr[None]
    size = tf.shape(x)[1:3] // scale
    if name == "bicubic":
        lr = tf.image.resize(x, size, method="bicubic", antialias=True)
    elif name == "gaussian":
        channels = x.shape[-1]
        k = tf.constant(_gaussian_kernel(), dtype=x.dtype)[:, :, None, None]
        k = tf.tile(k, [1, 1, channels, 1])
        pad = GAUSSIAN_SIZE // 2
        padded = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        blurred = tf.nn.depthwise_conv2d(padded, k, [1, 1, 1, 1], "VALID")
        off = (scale - 1) // 2
        lr = blurred[:, off::scale, off::scale][:, : size[0], : size[1]]
    elif name == "nearest":
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        rows = tf.cast((tf.range(size[0], dtype=tf.float32) + 0.5) * scale, tf.int32)
        cols = tf.cast((tf.range(size[1], dtype=tf.float32) + 0.5) * scale, tf.int32)
        lr = tf.gather(tf.gather(x, tf.minimum(rows, h - 1), axis=1), tf.minimum(cols, w - 1), axis=2)
    else:
        raise ValueError(f"{name!r} is not a fixed degradation ({', '.join(FIXED)})")
    return lr if batched else lr[0]


def upsample_bicubic_tf(lr, scale: int):
    """Bicubic (Keys a = -0.5) upsampling in TF, for pre-upsampling models' inputs."""
    import tensorflow as tf

    size = tf.shape(lr)[-3:-1] * scale
    return tf.image.resize(lr, size, method="bicubic", antialias=False)


# --- degradations as objects, by name ---------------------------------------------------------------


class _Fixed:
    """A degradation without random parameters (the classic protocols)."""

    kind: typing.ClassVar[str] = "bicubic"

    def draw(self, key) -> dict:
        return {}

    def apply(self, hr, params: dict, scale: int):
        return degrade_tf(hr, scale, self.kind)

    def __call__(self, hr, key, scale: int):
        return self.apply(hr, {}, scale)


@dataclasses.dataclass(frozen=True)
class Bicubic(_Fixed):
    """MATLAB-style antialiased bicubic downscale (the field's protocol)."""

    kind: typing.ClassVar[str] = "bicubic"


@dataclasses.dataclass(frozen=True)
class GaussianDecimation(_Fixed):
    """7x7 Gaussian blur (sigma 1.6), then every scale-th pixel."""

    kind: typing.ClassVar[str] = "gaussian"


@dataclasses.dataclass(frozen=True)
class Nearest(_Fixed):
    """Nearest-neighbour decimation (the thesis's own LR images)."""

    kind: typing.ClassVar[str] = "nearest"


# name -> class or "module:Class" (imported when first asked for: the real-world ones need TensorFlow)
_REGISTRY: dict[str, object] = {
    "bicubic": Bicubic, "gaussian": GaussianDecimation, "nearest": Nearest,
    "realesrgan": "common.realworld:RealESRGAN", "bsrgan": "common.realworld:BSRGAN",
}
DEGRADATIONS = tuple(_REGISTRY)  # the built-in names: the command lines' choices
DEGRADATION_HELP = ("how LR inputs are made from HR images: bicubic (MATLAB), gaussian (blur + decimation), "
                    "nearest, realesrgan (Real-ESRGAN's second-order blur/resize/noise/JPEG), bsrgan (BSRGAN's "
                    "shuffled order); the random ones take --degradation-options")
OPTIONS_HELP = ("NAME=VALUE changes of the degradation's ranges (e.g. noise_range=1,10 jpeg_range=60,95); "
                "python -m common.degradations options NAME lists them")


def register_degradation(name: str, factory) -> None:
    """Add a degradation: a class (or "module:Class") whose no-argument instance is the preset."""
    _REGISTRY[name] = factory


def degradation_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def degradation_class(name: str):
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown degradation {name!r}; choose from {', '.join(_REGISTRY)}") from None
    if isinstance(factory, str):
        module, attr = factory.split(":")
        factory = getattr(importlib.import_module(module), attr)
    return factory


def parse_options(cls, options) -> dict:
    """{field: value} from "field=value" strings (tuples as comma-separated values) or a dict."""
    if isinstance(options, dict):
        return dict(options)
    known = {f.name: f for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else {}
    hints = typing.get_type_hints(cls) if known else {}
    parsed = {}
    for item in options:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in known:
            listed = ", ".join(known) or "none"
            raise ValueError(f"degradation option {item!r}: expected NAME=VALUE with NAME one of: {listed}")
        kind = hints[name]
        try:
            if typing.get_origin(kind) is tuple:
                item_type = typing.get_args(kind)[0]
                parsed[name] = tuple(item_type(v) for v in text.split(","))
            elif kind is bool:
                parsed[name] = text.lower() in ("1", "yes", "true", "on")
            else:
                parsed[name] = kind(text)
        except ValueError:
            raise ValueError(f"degradation option {item!r}: {text!r} is not a valid {name}") from None
    return parsed


def make_degradation(name: str, options=()):
    """The degradation `name` with `options` ("field=value" strings or a dict) replacing its defaults."""
    cls = degradation_class(name)
    return cls(**parse_options(cls, options))


def random_degrade(hr: np.ndarray, scale: int, name: str, seed: int = 0, index: int = 0, options=()) -> np.ndarray:
    """A registered degradation applied eagerly (TF) with key (seed, index); float32, not rounded."""
    import tensorflow as tf

    degradation = make_degradation(name, options)
    key = tf.constant([int(seed), int(index)], tf.int64)
    return degradation(tf.constant(np.asarray(hr, np.float32)), key, scale).numpy().astype(np.float32)


def main(argv=None) -> int:
    """python -m common.degradations preview|options ...: see common.degradation_preview."""
    from common.degradation_preview import main as preview_main

    return preview_main(argv)


if __name__ == "__main__":
    import sys

    sys.exit(main())
