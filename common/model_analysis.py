"""What a model does to an image: scale, border loss, receptive field, memory (ModelInfo), and how
to feed it given its checkpoint metadata (Spec).

`analyze_model` runs the Keras model (and its intermediate layers) on two small inputs and compares
sizes; the result is plain data, so it can be stored beside a converted model and `spec_from_info`
works without TensorFlow. Metadata keys (common.checkpoints):
* "upsampling": "post" models enlarge by themselves; "pre" models get a bicubic-upscaled input.
* "color": "rgb" models see RGB; "y" models see the Y channel of YCbCr, Cb/Cr are upscaled bicubically.
* "input_range"/"output_range": pixel values [0, 1] map linearly to these.
"""
import dataclasses
import math
import weakref

DEFAULT_MARGIN = 16  # LR px of context per tile side for deep post-upsampling generators
# A post-upsampling model whose receptive field is at most this (LR px) gets all of it as margin, so
# its tiles give the untiled image (SRVGGNetCompact: 18); deeper ones get DEFAULT_MARGIN and the ramp.
FULL_FIELD_MARGIN = 2 * DEFAULT_MARGIN
DEFAULT_MARGIN_PRE = 48  # HR px cap for pre-upsampling models
BICUBIC_CONTEXT = 3  # LR px a bicubic-upscaled pixel depends on (2), plus one
ACTIVATION_FACTOR = 4  # live tensors per largest feature map (input, output, skips, workspace)


class InferenceError(ValueError):
    """An image/model combination that cannot be upscaled; the message is one line."""


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    in_channels: int
    out_channels: int
    ratio: float  # output pixels per input pixel along a side
    crop: float  # input pixels lost per side (valid padding); 0 for "same" padding
    receptive_field: float | None  # radius in input pixels (longest path); None if unknown
    bytes_per_pixel: float  # activation memory per input pixel for a batch of one
    multiple: int = 1  # input sides must be multiples of this (models that downsample inside)


_INFO: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


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
    """Scale, border loss, receptive field and memory use of a Keras image-to-image model."""
    if model in _INFO:
        return _INFO[model]
    import keras
    import tensorflow as tf

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
    """Check the metadata against a Keras model and work out scale, margins and limits."""
    return spec_from_info(analyze_model(model), meta)


def spec_from_info(info: ModelInfo, meta: dict | None) -> Spec:
    """model_spec from a ModelInfo (no model needed)."""
    meta = meta or {}
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
        exact = field is not None and field <= FULL_FIELD_MARGIN
        margin = math.ceil(field - 1e-6) if exact else DEFAULT_MARGIN
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
