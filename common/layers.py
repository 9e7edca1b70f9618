"""Custom Keras layers, registered so that whole-model `.h5` files reload (no Lambda layers)."""
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="sr")
class PixelShuffle(keras.layers.Layer):
    """Sub-pixel convolution upsampling (Shi et al.): (H, W, C*r*r) -> (H*r, W*r, C).

    Uses TensorFlow's depth_to_space channel order (not PyTorch's pixel_shuffle order).
    """

    def __init__(self, scale: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)

    def call(self, x):
        return tf.nn.depth_to_space(x, self.scale)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        r = self.scale
        return (b, None if h is None else h * r, None if w is None else w * r, c // (r * r))

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="sr")
class Rescale(keras.layers.Layer):
    """y = x * scale + offset; a serializable replacement for value-range Lambda layers."""

    def __init__(self, scale: float = 1.0, offset: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.offset = float(offset)

    def call(self, x):
        return x * self.scale + self.offset

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


@keras.saving.register_keras_serializable(package="sr")
class ReflectPad(keras.layers.Layer):
    """Pads height and width by mirroring (so a 'valid' network keeps the image size)."""

    def __init__(self, pad: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.pad = int(pad)

    def call(self, x):
        p = self.pad
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        p = 2 * self.pad
        return (b, None if h is None else h + p, None if w is None else w + p, c)

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}
