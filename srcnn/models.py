"""SRCNN (Dong et al., 2014/2016): patch extraction, non-linear mapping, reconstruction."""
import keras

import common  # noqa: F401
from common.layers import ReflectPad


def srcnn(
    f1: int = 9,
    f2: int = 5,
    f3: int = 5,
    n1: int = 64,
    n2: int = 32,
    channels: int = 1,
    padding: str = "valid",
    output_activation: str | None = None,
) -> keras.Model:
    """The three-layer SRCNN on a bicubic-upscaled input of any size.

    f1-f2-f3 are the kernel sizes (9-1-5, 9-3-5 and 9-5-5 in the paper), n1/n2 the filters.
    `channels` = 1 for the Y channel, 3 for RGB. `padding`: "valid" (the paper's training:
    the output is `border()` pixels smaller on each side), "same" (zero padding, as the
    thesis's Keras model) or "reflect" (mirror the input by `border()` and run valid: same
    size, no dark edges; what the shipped checkpoints use for inference). Weights are the
    same for all three, so a model trained "valid" loads into a "reflect" one.
    `output_activation="tanh"` with values in [-1, 1] is the thesis's variant.
    """
    inputs = keras.Input((None, None, channels), name="bicubic")
    x = inputs
    conv_padding = padding
    if padding == "reflect":
        x = ReflectPad((f1 + f2 + f3 - 3) // 2, name="reflect")(x)
        conv_padding = "valid"
    elif padding not in ("valid", "same"):
        raise ValueError(f"padding must be valid, same or reflect, not {padding!r}")
    x = keras.layers.Conv2D(n1, f1, padding=conv_padding, activation="relu", name="conv1")(x)
    x = keras.layers.Conv2D(n2, f2, padding=conv_padding, activation="relu", name="conv2")(x)
    x = keras.layers.Conv2D(channels, f3, padding=conv_padding, activation=output_activation,
                            name="conv3")(x)
    return keras.Model(inputs, x, name=f"srcnn_{f1}-{f2}-{f3}")


def border(f1: int = 9, f2: int = 5, f3: int = 5, **_) -> int:
    """Pixels lost on each side by a 'valid' SRCNN."""
    return (f1 + f2 + f3 - 3) // 2
