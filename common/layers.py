"""Custom Keras layers, registered so that whole-model `.h5` files reload (no Lambda layers)."""
import itertools

import keras
import numpy as np
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


def _block_kernel_index(kernel_size: int, in_channels: int, filters: int, block: int) -> np.ndarray:
    """Where each weight of the space-to-depth kernel comes from: indices into [kernel.ravel(), 0].

    A stride-1 'same' k x k convolution equals, on space_to_depth(x, b) blocks, a (2q+1) x (2q+1)
    convolution (q = (k//2 + b - 1) // b) from b*b*C_in to b*b*C_out channels whose output turns
    back with depth_to_space(., b). Entry [Qy, Qx, (ty*b+tx)*C_in + i, (ry*b+rx)*C_out + o] is
    kernel[b*Qy+ty-ry + k//2, b*Qx+tx-rx + k//2, i, o] where that tap exists, else 0.
    """
    k, b, ci, co = kernel_size, block, in_channels, filters
    p = k // 2
    q = (p + b - 1) // b
    flat = np.arange(k * k * ci * co).reshape(k, k, ci, co)
    index = np.full((2 * q + 1, 2 * q + 1, b * b * ci, b * b * co), k * k * ci * co, np.int32)  # last slot: 0
    blocks, taps = range(b), range(-q, q + 1)
    for ry, rx, ty, tx, qy, qx in itertools.product(blocks, blocks, blocks, blocks, taps, taps):
        u, v = b * qy + ty - ry, b * qx + tx - rx
        if abs(u) <= p and abs(v) <= p:
            src, dst = (ty * b + tx) * ci, (ry * b + rx) * co
            index[qy + q, qx + q, src:src + ci, dst:dst + co] = flat[u + p, v + p]
    return index


@keras.saving.register_keras_serializable(package="sr")
class BlockConv2D(keras.layers.Conv2D):
    """keras Conv2D (stride 1, 'same' padding) computed on space_to_depth blocks of `block` pixels.

    Same weights, same outputs (to float rounding) and same checkpoints as Conv2D. Worth it for a
    large kernel with few output channels, such as SRResNet's last 9x9 convolution to RGB: oneDNN
    runs that shape at a few GFLOP/s; on 4x4 blocks it becomes a 3x3 convolution from 16*C_in to
    48 channels, about 2.6x faster forward and 2.8x forward+backward (measured layer by layer on
    the project's 2-core CPU; README, Benchmarks).
    Inputs of any size: the bottom/right edge is zero-padded to a multiple of `block` (which is what
    'same' padding assumes outside the image) and the result cropped back.
    """

    def __init__(self, filters, kernel_size, block: int = 4, **kwargs):
        kwargs.setdefault("padding", "same")
        super().__init__(filters, kernel_size, **kwargs)
        if self.padding != "same" or tuple(self.strides) != (1, 1) or tuple(self.dilation_rate) != (1, 1) \
                or self.kernel_size[0] != self.kernel_size[1] or self.kernel_size[0] % 2 == 0 or self.groups != 1:
            raise ValueError("BlockConv2D needs an odd square kernel, stride 1, no dilation or groups and 'same' padding")
        self.block = int(block)
        self._index = None

    def build(self, input_shape):
        super().build(input_shape)
        self._index = _block_kernel_index(self.kernel_size[0], int(input_shape[-1]), self.filters, self.block)

    def convolution_op(self, inputs, kernel):
        b = self.block
        flat = tf.concat([tf.reshape(kernel, [-1]), tf.zeros([1], kernel.dtype)], 0)
        block_kernel = tf.gather(flat, self._index)
        shape = tf.shape(inputs)
        h, w = shape[1], shape[2]
        x = tf.pad(inputs, [[0, 0], [0, (-h) % b], [0, (-w) % b], [0, 0]])
        y = tf.nn.conv2d(tf.nn.space_to_depth(x, b), block_kernel, 1, "SAME")
        return tf.nn.depth_to_space(y, b)[:, :h, :w, :]

    def get_config(self):
        return {**super().get_config(), "block": self.block}
