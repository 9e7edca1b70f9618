"""Super-resolve an image of any size with an exported model, tile by tile.

`upscale(image, model, meta)` follows the checkpoint metadata (common.checkpoints):
* "upsampling": "post" models enlarge by themselves; "pre" models get a bicubic-upscaled input
  (common.degradations.imresize) and refine it.
* "color": "rgb" models see RGB; "y" models see the Y channel of YCbCr (common.images) while
  Cb/Cr are upscaled bicubically.
* "input_range"/"output_range": pixel values [0, 1] map linearly to these. Output is clipped to [0, 1].

Tiling. The image is cut into overlapping tiles (in LR pixels). Each tile carries `margin` pixels of
context on every side facing another tile; those pixels get weight 0 and the next `ramp` pixels a
linear ramp, then the tiles are blended as a weighted average. When the margin covers the model's
receptive field the tiled result equals the untiled one; for deep generators, whose theoretical
receptive field is hundreds of pixels, the margin is capped (DEFAULT_MARGIN) and the ramp hides
what little difference remains. Tiles all have one size and go through a single traced
tf.function in small batches; only one batch at a time is handed to TensorFlow.
"""
import common  # noqa: F401  (quiet TensorFlow import)

import dataclasses
import math
import os
import weakref
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from common.degradations import imresize
from common.images import rgb_to_ycbcr, ycbcr_to_rgb
from common.precision import cast_model, resolve_precision

DEFAULT_MARGIN = 16  # LR px of context per tile side for deep post-upsampling generators
DEFAULT_MARGIN_PRE = 48  # HR px cap for pre-upsampling models
BICUBIC_CONTEXT = 3  # LR px a bicubic-upscaled pixel depends on (2), plus one
MIN_TILE, MAX_TILE = 32, 1024
MEMORY_FRACTION = 0.25  # of the available memory, for one batch of tiles
MAX_BUDGET = 768 << 20  # bytes of activations for one batch of tiles
ACTIVATION_FACTOR = 4  # live tensors per largest feature map (input, output, skips, workspace)
BATCH_MIN_TILE = 256  # batch two tiles only if tiles can still be this large
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601; inverts grey -> (g, g, g)

_precision = "float32"  # set_precision()


class InferenceError(ValueError):
    """An image/model combination that cannot be upscaled; the message is one line."""


def set_precision(name: str) -> str:
    """Choose the compute precision of `upscale` (float32, bfloat16 or auto); returns the one used.

    bfloat16 runs the model rebuilt by common.precision.cast_model (weights stay float32; output,
    clipping and rounding as in float32). "auto" picks bfloat16 only where it is native.
    """
    global _precision
    _precision = resolve_precision(name)[0]
    return _precision


def get_precision() -> str:
    return _precision


# --- model analysis ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    in_channels: int
    out_channels: int
    ratio: float  # output pixels per input pixel along a side
    crop: float  # input pixels lost per side (valid padding); 0 for "same" padding
    receptive_field: float | None  # radius in input pixels (longest path); None if unknown
    bytes_per_pixel: float  # activation memory per input pixel for a batch of one
    multiple: int = 1  # input sides must be multiples of this (models that downsample inside)


_INFO: "weakref.WeakKeyDictionary[keras.Model, ModelInfo]" = weakref.WeakKeyDictionary()
_FUNCTIONS: "weakref.WeakKeyDictionary[keras.Model, tf.types.experimental.GenericFunction]" = (
    weakref.WeakKeyDictionary()
)


def _sublayers(layer) -> list:
    try:
        return list(layer._flatten_layers(include_self=True, recursive=True))
    except AttributeError:
        return [layer]


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _radius(layer, ratio_out: float) -> float:
    """Receptive-field radius (in model-input px) one conv/pool layer adds."""
    if hasattr(layer, "kernel_size") and hasattr(layer, "strides"):
        k, d, s = _pair(layer.kernel_size), _pair(getattr(layer, "dilation_rate", 1)), _pair(layer.strides)
        transposed = "Transpose" in type(layer).__name__
        ratio_in = ratio_out / s[0] if transposed else ratio_out * s[0]
        return max((k[i] - 1) / 2 * d[i] for i in range(2)) / max(ratio_in, 1e-9)
    if hasattr(layer, "pool_size"):
        k, s = _pair(layer.pool_size), _pair(layer.strides or layer.pool_size)
        return max((k[i] - 1) / 2 for i in range(2)) / max(ratio_out * s[0], 1e-9)
    return 0.0


def analyze_model(model) -> ModelInfo:
    """Scale, border loss, receptive field and memory use of an image-to-image model.

    Runs the model (and its intermediate layers) on two small inputs and compares sizes.
    """
    if model in _INFO:
        return _INFO[model]
    try:
        in_channels = int(model.inputs[0].shape[-1])
    except (AttributeError, IndexError, TypeError, ValueError):
        raise InferenceError("the model has no defined input (build it on keras.Input)") from None
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    owners, outputs = [], []
    for layer in layers:
        try:
            out = layer.output
        except (AttributeError, ValueError):  # shared layer or several outputs
            continue
        if not isinstance(out, (list, tuple, dict)) and len(out.shape) == 4:
            owners.append(layer)
            outputs.append(out)
    try:
        probe = keras.Model(model.inputs, outputs + [model.outputs[0]])
    except Exception:  # not a functional graph; fall back to the model alone
        probe, owners = model, []

    def sizes(n):
        result = probe(tf.zeros((1, n, n, in_channels)), training=False)
        result = result if isinstance(result, (list, tuple)) else [result]
        return [(int(t.shape[1]), int(t.shape[-1])) for t in result]

    for n1, n2 in ((16, 24), (48, 64), (128, 160)):
        try:
            s1, s2 = sizes(n1), sizes(n2)
        except Exception:  # too small for a valid-padding model: try larger
            continue
        if s1[-1][0] > 0:
            break
    else:
        raise InferenceError("the model does not run on 160x160 test inputs")

    ratios = [(b[0] - a[0]) / (n2 - n1) for a, b in zip(s1, s2)]
    ratio = ratios[-1]
    if ratio <= 0:
        raise InferenceError("the model's output does not grow with its input; not an image model")
    crop = max(0.0, (n1 - s1[-1][0] / ratio) / 2)
    out_channels = s1[-1][1]

    biggest = max([in_channels, out_channels * ratio**2] + [r**2 * c for r, (_, c) in zip(ratios, s1)])
    if owners:
        field, ratio_by_layer, last = 0.0, dict(zip(map(id, owners), ratios)), 1.0
        for layer in layers:
            previous, last = last, ratio_by_layer.get(id(layer), last)
            field += sum(_radius(sub, last) for sub in _sublayers(layer))
            if last < previous:  # downsampling by f: an output pixel sees f input pixels more
                field += (previous / last - 1) / previous
    else:
        field = None
        biggest = max(biggest, 64 * ratio**2)
    smallest_ratio = min([1.0] + [r for r in ratios if r > 0])
    multiple = max(1, round(1 / smallest_ratio))
    info = ModelInfo(in_channels, out_channels, ratio, crop, field, 4.0 * ACTIVATION_FACTOR * biggest,
                     multiple)
    _INFO[model] = info
    return info


_CAST: "weakref.WeakKeyDictionary[keras.Model, keras.Model]" = weakref.WeakKeyDictionary()


def _compiled(model, precision: str = "float32"):
    """model(x, training=False) in `precision` as one tf.function traced once for any tile size."""
    if precision == "bfloat16":
        if model not in _CAST:
            _CAST[model] = cast_model(model, "bfloat16")
        else:  # the model may have trained since: copy its current (float32) weights
            for mine, theirs in zip(_CAST[model].weights, model.weights):
                mine.assign(theirs)
        model = _CAST[model]
    fn = _FUNCTIONS.get(model)
    if fn is None:
        ref = weakref.ref(model)
        channels = int(model.inputs[0].shape[-1])

        def call(x):
            return tf.cast(ref()(x, training=False), tf.float32)

        fn = tf.function(call, input_signature=[tf.TensorSpec([None, None, None, channels], tf.float32)])
        _FUNCTIONS[model] = fn
    return fn


# --- how to feed the model ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Spec:
    scale: int
    pre: bool
    color: str
    input_range: tuple[float, float]
    output_range: tuple[float, float]
    margin: int  # LR px of context per tile side
    pad: int  # reflect padding of the model input (valid-padding models)
    out_crop: int  # output px to drop per side after that padding
    min_size: int  # smallest LR side the model accepts
    bytes_per_lr_pixel: float
    multiple: int = 1  # LR tile sides and positions are multiples of this


def _range(meta, key) -> tuple[float, float]:
    value = meta.get(key) or (0.0, 1.0)
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InferenceError(f"metadata {key} must be [low, high], not {value!r}") from None
    if lo == hi:
        raise InferenceError(f"metadata {key} {value!r} is empty")
    return lo, hi


def model_spec(model, meta: dict | None) -> Spec:
    """Check the metadata against the model and work out scale, margins and limits."""
    meta = meta or {}
    info = analyze_model(model)
    upsampling = meta.get("upsampling") or ("pre" if abs(info.ratio - 1) < 1e-6 else "post")
    if upsampling not in ("pre", "post"):
        raise InferenceError(f"metadata upsampling must be 'pre' or 'post', not {upsampling!r}")
    pre = upsampling == "pre"
    if pre:
        if abs(info.ratio - 1) > 1e-6:
            raise InferenceError(
                f"a pre-upsampling model must keep the size, but this one scales x{info.ratio:g}"
            )
        if meta.get("scale") is None:
            raise InferenceError("metadata lacks the 'scale' of this pre-upsampling model")
        scale = int(meta["scale"])
    else:
        scale = round(info.ratio)
        if abs(info.ratio - scale) > 1e-6 or scale < 1:
            raise InferenceError(f"the model scales by x{info.ratio:g}, not a whole number")
        if meta.get("scale") is not None and int(meta["scale"]) != scale:
            raise InferenceError(f"the model enlarges x{scale} but its metadata says scale {meta['scale']}")

    color = meta.get("color") or ("y" if info.in_channels == 1 else "rgb")
    wanted = {"rgb": 3, "y": 1}.get(color)
    if wanted is None:
        raise InferenceError(f"metadata color must be 'rgb' or 'y', not {color!r}")
    if info.in_channels != wanted or info.out_channels != wanted:
        raise InferenceError(
            f"color {color!r} needs a {wanted}-channel model; this one maps "
            f"{info.in_channels} to {info.out_channels} channels"
        )

    field = info.receptive_field
    if pre:
        hr_field = DEFAULT_MARGIN_PRE if field is None else min(field, DEFAULT_MARGIN_PRE)
        margin = math.ceil(hr_field / scale) + BICUBIC_CONTEXT
    else:
        margin = DEFAULT_MARGIN if field is None else min(math.ceil(field - 1e-6), DEFAULT_MARGIN)
        if color == "y":
            margin = max(margin, BICUBIC_CONTEXT)

    pad = math.ceil(info.crop - 1e-6)
    out_crop = round((pad - info.crop) * info.ratio)
    min_model_side = pad + 1 if pad else 1
    min_size = math.ceil(min_model_side / scale) if pre else min_model_side
    min_size = max(min_size, int(meta.get("min_input_size") or 1))
    per_model_px = info.bytes_per_pixel
    staging = 8 * 8 * scale**2  # numpy float64 colour conversion / bicubic per output pixel
    bytes_per_lr = per_model_px * (scale**2 if pre else 1) + staging
    multiple = info.multiple // math.gcd(info.multiple, scale) if pre else info.multiple
    return Spec(scale, pre, color, _range(meta, "input_range"), _range(meta, "output_range"),
                margin, pad, out_crop, min_size, bytes_per_lr, multiple)


# --- memory and tile layout -----------------------------------------------------------------------


def available_memory() -> int:
    """Bytes of memory available: /proc/meminfo MemAvailable, limited by a cgroup limit if any."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = 2 << 30
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < (1 << 60):
            available = min(available, max(int(limit) - usage, 0))
        break
    return available


def auto_tile_size(spec: Spec, batch_size: int, margin: int, ramp: int) -> int:
    """The largest tile (LR px) whose batch fits in a share of the available memory."""
    budget = min(MEMORY_FRACTION * available_memory(), MAX_BUDGET)
    side = int(math.sqrt(budget / (batch_size * spec.bytes_per_lr_pixel))) // 8 * 8
    smallest = max(MIN_TILE, 2 * (2 * margin + ramp))
    return int(min(max(side, smallest), MAX_TILE))


def choose_tiling(spec: Spec, size, tile=None, tile_overlap=None, batch_size=None):
    """(tile, batch_size, margin, ramp) for an image of `size` (H, W); see upscale()."""
    margin = spec.margin if tile_overlap is None else int(tile_overlap)
    if margin < 0:
        raise InferenceError("tile overlap must be >= 0")
    ramp = max(1, margin // 2)
    if tile is None:
        if batch_size is None:  # two tiles per call if tiles stay large, else one larger tile
            batch_size = 2 if auto_tile_size(spec, 2, margin, ramp) >= BATCH_MIN_TILE else 1
        tile = auto_tile_size(spec, batch_size, margin, ramp)
    elif tile == 0:
        tile = max(size)
    m = spec.multiple
    tile = max(m, tile // m * m)
    if tile - 2 * margin - ramp < m and tile < max(size):
        raise InferenceError(
            f"tile {tile} is too small for an overlap of {margin} px: use at least {2 * margin + ramp + m}"
        )
    return int(tile), int(batch_size or 2), margin, ramp


def _positions(length: int, tile: int, margin: int, ramp: int, multiple: int = 1) -> list[int]:
    """Tile starts, evenly spread, multiples of `multiple`, at most tile - 2*margin - ramp apart."""
    if tile >= length:
        return [0]
    stride = (tile - 2 * margin - ramp) // multiple
    span = (length - tile) // multiple
    n = math.ceil(span / stride) + 1
    return [multiple * round(i * span / (n - 1)) for i in range(n)]


def _profile(start: int, tile: int, length: int, margin: int, ramp: int, scale: int) -> np.ndarray:
    """Blending weights (output px) of one tile along one axis."""
    t = np.arange(tile * scale, dtype=np.float64)
    m, b = margin * scale, ramp * scale
    weight = np.ones_like(t)
    if start > 0:
        weight = np.minimum(weight, np.clip((t - m + 1) / (b + 1), 0, 1))
    if start + tile < length:
        weight = np.minimum(weight, np.clip((t[::-1] - m + 1) / (b + 1), 0, 1))
    return weight


def upsample_bicubic_strips(image: np.ndarray, scale: int, rows: int = 64) -> np.ndarray:
    """MATLAB bicubic upscaling by an integer factor, a strip of rows at a time (float32).

    Same result as common.degradations.upsample_bicubic, with far less temporary memory.
    """
    h = image.shape[0]
    out = np.empty((h * scale, image.shape[1] * scale) + image.shape[2:], np.float32)
    context = BICUBIC_CONTEXT
    for r0 in range(0, h, rows):
        r1 = min(r0 + rows, h)
        a, b = max(r0 - context, 0), min(r1 + context, h)
        strip = imresize(image[a:b], float(scale))
        out[r0 * scale : r1 * scale] = strip[(r0 - a) * scale : (r1 - a) * scale]
    return out


# --- the model on a batch of tiles ------------------------------------------------------------------


def _bicubic(batch: np.ndarray, scale: int) -> np.ndarray:
    return np.stack([imresize(t, float(scale)) for t in batch]).astype(np.float32)


def _run(lr: np.ndarray, fn, spec: Spec) -> np.ndarray:
    """(N, h, w, C) LR tiles in [0, 1] -> (N, h*s, w*s, C) SR tiles in [0, 1]."""
    grey = lr.shape[-1] == 1
    x = np.repeat(lr, 3, axis=-1) if grey else lr
    chroma = None
    if spec.color == "y":
        ycc = rgb_to_ycbcr(x)
        x, chroma = ycc[..., :1], _bicubic(ycc[..., 1:], spec.scale)
    if spec.pre:
        x = _bicubic(x, spec.scale)
    lo, hi = spec.input_range
    x = x * (hi - lo) + lo
    if spec.pad:
        p = spec.pad
        x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
    y = fn(tf.constant(x, tf.float32)).numpy()
    if spec.out_crop:
        c = spec.out_crop
        y = y[:, c:-c, c:-c]
    expected = (lr.shape[1] * spec.scale, lr.shape[2] * spec.scale)
    if y.shape[1:3] != expected:
        raise InferenceError(
            f"the model made {y.shape[1:3]} pixels from {lr.shape[1:3]}, expected {expected}"
        )
    lo, hi = spec.output_range
    y = (y - lo) / (hi - lo)
    if chroma is not None:
        y = ycbcr_to_rgb(np.concatenate([y, chroma], axis=-1))
    y = np.clip(y, 0.0, 1.0).astype(np.float32, copy=False)
    if grey:
        y = (y @ LUMA)[..., None]
    return y.astype(np.float32, copy=False)


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """The k-th (0-7) of the 8 flips/rotations of an (H, W, ...) array: k % 4 quarter turns, then a
    left-right flip if k >= 4."""
    out = np.rot90(image, k % 4, axes=(0, 1))
    return out[:, ::-1] if k >= 4 else out


def undo_dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """Inverse of dihedral(., k)."""
    out = image[:, ::-1] if k >= 4 else image
    return np.rot90(out, -(k % 4), axes=(0, 1))


def geometric_self_ensemble(fn, image: np.ndarray, progress=None) -> np.ndarray:
    """Mean of fn over the 8 flips/rotations of `image`, each output turned back (the geometric
    self-ensemble of Lim et al. 2017, "EDSR+"); fn maps (H, W, C) to (H*s, W*s, C).

    progress: optional callable(done, total) for the 8 passes.
    """
    total = None
    for k in range(8):
        out = undo_dihedral(fn(np.ascontiguousarray(dihedral(image, k))), k)
        if total is None:
            total = out.astype(np.float32, copy=True)
        else:
            total += out
        if progress is not None:
            progress(k + 1, 8)
    return total / np.float32(8)


def upscale(image, model, meta=None, tile=None, tile_overlap=None, batch_size=None, progress=None,
            precision=None, self_ensemble: bool = False):
    """Super-resolve a float RGB (H, W, 3) or grey (H, W[, 1]) image in [0, 1].

    tile: LR tile side in pixels; None chooses it from the available memory, 0 disables tiling.
    tile_overlap: LR pixels of context per tile side (default: the model's receptive field,
        capped at DEFAULT_MARGIN); neighbouring tiles overlap by 2 * tile_overlap + ramp.
    batch_size: tiles per model call (default 2, or 1 when memory allows only small tiles).
    progress: optional callable(done_tiles, total_tiles) (with self_ensemble: done_passes, 8).
    precision: "float32", "bfloat16" or "auto" (default: the one chosen by set_precision()).
    self_ensemble: average the results for the 8 flips/rotations of the image
        (geometric_self_ensemble): 8 times the work, usually a little higher PSNR.
    Returns float32 (H*s, W*s, C) in [0, 1] with the input's channel count (2-D for 2-D input).
    """
    image = np.asarray(image, dtype=np.float32)
    flat = image.ndim == 2
    if flat:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise InferenceError(f"expected an (H, W, 3) RGB or (H, W, 1) grey image, got shape {image.shape}")
    if self_ensemble:  # progress counts the 8 passes
        out = geometric_self_ensemble(
            lambda im: upscale(im, model, meta, tile, tile_overlap, batch_size, None, precision), image, progress)
        return out[..., 0] if flat else out
    spec = model_spec(model, meta)
    h, w = image.shape[:2]
    if min(h, w) < spec.min_size:
        raise InferenceError(
            f"image is {w}x{h} pixels; this model needs at least {spec.min_size}x{spec.min_size}"
        )
    s, m = spec.scale, spec.multiple
    full_h, full_w = h, w
    if (h % m or w % m) and m > 1:  # models that downsample inside need multiples of m
        image = np.pad(image, ((0, -h % m), (0, -w % m), (0, 0)), mode="symmetric")
        h, w = image.shape[:2]
    tile, batch_size, margin, ramp = choose_tiling(spec, (h, w), tile, tile_overlap, batch_size)
    th, tw = min(tile, h), min(tile, w)
    if min(th, tw) < spec.min_size:  # a thin image: tiles along its short side are the whole side
        raise InferenceError(f"tile {tile} is smaller than the {spec.min_size} px this model needs")
    rows, cols = _positions(h, th, margin, ramp, m), _positions(w, tw, margin, ramp, m)
    row_w = [_profile(y, th, h, margin, ramp, s) for y in rows]
    col_w = [_profile(x, tw, w, margin, ramp, s) for x in cols]

    out = np.zeros((h * s, w * s, image.shape[2]), np.float32)
    fn = _compiled(model, _precision if precision is None else resolve_precision(precision)[0])
    tiles = [(i, j) for i in range(len(rows)) for j in range(len(cols))]
    for start in range(0, len(tiles), batch_size):
        chunk = tiles[start : start + batch_size]
        lr = np.stack([image[rows[i] : rows[i] + th, cols[j] : cols[j] + tw] for i, j in chunk])
        sr = _run(lr, fn, spec)
        for (i, j), tile_sr in zip(chunk, sr):
            y0, x0 = rows[i] * s, cols[j] * s
            weight = np.outer(row_w[i], col_w[j]).astype(np.float32)[..., None]
            out[y0 : y0 + th * s, x0 : x0 + tw * s] += tile_sr * weight
        if progress is not None:
            progress(min(start + batch_size, len(tiles)), len(tiles))

    # The weights are separable, so their sum is an outer product of two 1-D sums.
    sum_y, sum_x = np.zeros(h * s), np.zeros(w * s)
    for y, weight in zip(rows, row_w):
        sum_y[y * s : y * s + th * s] += weight
    for x, weight in zip(cols, col_w):
        sum_x[x * s : x * s + tw * s] += weight
    assert sum_y.min() > 0 and sum_x.min() > 0, "tiles do not cover the image"
    inv_x = (1.0 / sum_x).astype(np.float32)
    for r in range(0, h * s, 256):
        block = out[r : r + 256]
        block *= ((1.0 / sum_y[r : r + 256]).astype(np.float32)[:, None] * inv_x[None, :])[..., None]
    np.clip(out, 0.0, 1.0, out=out)
    out = out[: full_h * s, : full_w * s]
    return out[..., 0] if flat else out
