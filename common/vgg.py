"""VGG19 feature extractor for perceptual losses (SRGAN's phi_i,j and ESRGAN's pre-activation features).

`vgg_features(...)` returns a frozen Keras model that takes RGB images in [0, 1] and returns a
dict {layer name: features}, always a dict (also for one layer). Layer names follow the papers:
`convI_J` is the J-th convolution of block I (Keras' `blockI_convJ`); `conv5_4` of VGG19 is
SRGAN's "VGG54". VGG's own preprocessing (x*255, RGB->BGR, minus the ImageNet mean) is the
model's first layer, so callers pass [0, 1] images.

The trunk is built here with separate Conv2D and ReLU layers (only up to the deepest layer
asked for), so both the post-activation output (SRGAN; identical to Keras' fused conv+ReLU)
and the pre-activation output (ESRGAN) are available; weights are read from Keras' VGG19 files.
"""
from pathlib import Path

import keras
from keras import ops

import common  # noqa: F401  (quiet TensorFlow import)

IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
BLOCKS = (2, 2, 4, 4, 4)  # convolutions per block in VGG19
FILTERS = (64, 128, 256, 512, 512)
NOTOP_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
NOTOP_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + NOTOP_FILE
NOTOP_HASH = "253f8cb515780f3b799900260a226db6"


class VGGWeightsUnavailable(RuntimeError):
    """VGG19 weights cannot be found or loaded; the message is one line a CLI can print."""


@keras.saving.register_keras_serializable(package="sr")
class VGGPreprocess(keras.layers.Layer):
    """RGB [0, 1] -> VGG input: x*255, RGB->BGR, minus the ImageNet BGR mean (Caffe style)."""

    def call(self, x):
        mean = ops.convert_to_tensor(IMAGENET_MEAN_BGR, dtype=x.dtype)
        return ops.flip(x, axis=-1) * ops.cast(255.0, x.dtype) - mean


def _keras_name(layer: str) -> str:
    """'conv5_4' or 'block5_conv4' -> 'block5_conv4' (checked against VGG19)."""
    if layer.startswith("conv") and "_" in layer:
        block, conv = layer[4:].split("_", 1)
    elif layer.startswith("block") and "_conv" in layer:
        block, conv = layer[5:].split("_conv", 1)
    else:
        block = conv = ""
    if not (block.isdigit() and conv.isdigit() and 1 <= int(block) <= 5
            and 1 <= int(conv) <= BLOCKS[int(block) - 1]):
        raise ValueError(f"unknown VGG19 layer {layer!r}; use conv1_1 ... conv5_4")
    return f"block{int(block)}_conv{int(conv)}"


def _paper_name(keras_name: str) -> str:
    block, conv = keras_name[5:].split("_conv")
    return f"conv{block}_{conv}"


def imagenet_weights_file() -> str:
    """Path of Keras' cached VGG19 notop weights, downloading them if possible."""
    try:
        return keras.utils.get_file(NOTOP_FILE, NOTOP_URL, cache_subdir="models", file_hash=NOTOP_HASH)
    except Exception as exc:  # noqa: BLE001  (Keras raises a bare Exception when offline)
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise VGGWeightsUnavailable(
            "ImageNet VGG19 weights are not available offline: pass --vgg-weights FILE "
            f"(Keras' {NOTOP_FILE}) or put that file in ~/.keras/models/ ({reason})"
        ) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_weights(path: str, conv_names) -> dict:
    """{Keras conv layer name: [kernel, bias]} for `conv_names` from a VGG19 weights file.

    Reads Keras 2 `.h5` weight files (the published vgg19_weights_tf_dim_ordering_tf_kernels
    files, with or without the top) by layer name, and Keras 3 `.weights.h5` files of
    `keras.applications.VGG19(include_top=False)`.
    """
    import h5py
    import numpy as np

    if not Path(path).is_file():
        raise VGGWeightsUnavailable(f"VGG19 weights file not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            if "layer_names" in f.attrs:  # Keras 2 format: one group per layer
                weights = {}
                for name in conv_names:
                    if name not in f:
                        raise VGGWeightsUnavailable(f"{path} is not a VGG19 weights file (no {name})")
                    group = f[name]
                    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
                    weights[name] = [np.asarray(group[n]) for n in names]
                return weights
    except OSError as exc:
        raise VGGWeightsUnavailable(f"cannot load VGG19 weights from {path}: {_first_line(exc)}") from None
    model = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    try:
        model.load_weights(path)
    except Exception as exc:  # noqa: BLE001
        raise VGGWeightsUnavailable(f"cannot load VGG19 weights from {path}: {_first_line(exc)}") from None
    return {name: model.get_layer(name).get_weights() for name in conv_names}


def vgg_features(
    layers=("conv5_4",),
    before_activation: bool = False,
    weights="imagenet",
    input_shape=(None, None, 3),
    random_init: str = "glorot_uniform",
) -> keras.Model:
    """Frozen model: RGB [0, 1] images -> {layer: VGG19 features} (a dict, keyed as `convI_J`).

    `weights`: "imagenet" (Keras' download/cache; `VGGWeightsUnavailable` when offline), a path to
    Keras' VGG19 weights file, or None (random initialisation, for tests).
    `before_activation=True` returns the convolution outputs before their ReLU (ESRGAN).
    `random_init`: the kernel initialiser when `weights` is None ("he_normal" keeps the activations'
    scale through the 16 ReLU layers, as a random perceptual network needs).
    """
    if isinstance(layers, str):
        layers = (layers,)
    wanted = {_keras_name(name): _paper_name(_keras_name(name)) for name in layers}
    if not wanted:
        raise ValueError("no VGG19 layer requested")
    if weights is not None:  # fail before building anything
        path = imagenet_weights_file() if weights == "imagenet" else str(weights)
        if not Path(path).is_file():
            raise VGGWeightsUnavailable(f"VGG19 weights file not found: {path}")

    inputs = keras.Input(input_shape, name="rgb")
    x = VGGPreprocess(name="vgg_preprocess")(inputs)
    outputs, convs = {}, []
    for block, (count, filters) in enumerate(zip(BLOCKS, FILTERS), start=1):
        if len(outputs) == len(wanted):
            break
        if block > 1:
            x = keras.layers.MaxPooling2D(2, 2, name=f"block{block - 1}_pool")(x)
        for conv in range(1, count + 1):
            name = f"block{block}_conv{conv}"
            layer = keras.layers.Conv2D(filters, 3, padding="same", name=name,
                                        kernel_initializer=random_init if weights is None else "glorot_uniform")
            convs.append(layer)
            pre = layer(x)
            x = keras.layers.ReLU(name=f"{name}_relu")(pre)
            if name in wanted:
                outputs[wanted[name]] = pre if before_activation else x
            if len(outputs) == len(wanted):
                break

    model = keras.Model(inputs, outputs, name="vgg19_features")
    if weights is not None:
        source = _read_weights(path, [layer.name for layer in convs])
        for layer in convs:
            try:
                layer.set_weights(source[layer.name])
            except ValueError as exc:
                raise VGGWeightsUnavailable(
                    f"cannot load VGG19 weights from {path}: {layer.name}: {_first_line(exc)}"
                ) from None
    model.trainable = False
    return model
