"""ESRGAN networks (Wang et al., 2018): the RRDB generator and the VGG-style discriminator; and
Real-ESRGAN's SRVGGNetCompact (Wang et al., 2021), a small generator for CPUs.

Layer names follow the official PyTorch code (xinntao/ESRGAN `RRDBNet_arch.py`) with "." replaced
by "_", e.g. `RRDB_trunk.3.RDB2.conv5` -> `RRDB_trunk_3_RDB2_conv5`, so `esrgan.convert` can load
official weights by name. The generator maps LR RGB in [0, 1] to SR RGB in [0, 1] (not clipped).
"""
import math

import common  # noqa: F401  (quiet TensorFlow import)
import keras
import tensorflow as tf
from keras import layers

from common.layers import PixelShuffle


@keras.saving.register_keras_serializable(package="sr")
class ScaledResidual(keras.layers.Layer):
    """y = x + res_scale * f: the residual scaling of ESRGAN's dense blocks (0.2 in the paper)."""

    def __init__(self, res_scale: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self.res_scale = float(res_scale)

    def call(self, inputs):
        x, f = inputs
        return x + self.res_scale * f

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "res_scale": self.res_scale}


@keras.saving.register_keras_serializable(package="sr")
class PixelUnshuffle(keras.layers.Layer):
    """(H, W, C) -> (H/r, W/r, C*r*r), TensorFlow's space_to_depth channel order.

    Used only by BasicSR/Real-ESRGAN x2 and x1 models, which unshuffle the input before conv_first.
    """

    def __init__(self, scale: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)

    def call(self, x):
        return tf.nn.space_to_depth(x, self.scale)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        r = self.scale
        return (b, None if h is None else h // r, None if w is None else w // r, c * r * r)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def keras_name(official_name: str) -> str:
    """Keras layer name for an official PyTorch module name (`RRDB_trunk.0.RDB1.conv1`)."""
    return official_name.replace(".", "_")


def _rdb_init():
    # Kaiming normal (fan_in, gain sqrt(2)) scaled by 0.1: variance scale 2 * 0.1**2.
    return keras.initializers.VarianceScaling(2.0 * 0.01, mode="fan_in", distribution="untruncated_normal")


def _torch_default_init():
    # PyTorch's default Conv2d init: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)).
    return keras.initializers.VarianceScaling(1.0 / 3.0, mode="fan_in", distribution="uniform")


def _conv(filters, name, init=None):
    return layers.Conv2D(filters, 3, padding="same", kernel_initializer=init or _torch_default_init(), name=name)


def residual_dense_block(x, num_filters=64, growth=32, res_scale=0.2, name="RDB"):
    """Residual dense block: 5 densely connected 3x3 convs, output x + res_scale * conv5."""
    features = [x]
    for i in range(1, 5):
        inp = x if i == 1 else layers.Concatenate(name=f"{name}_cat{i}")(features)
        y = _conv(growth, f"{name}_conv{i}", _rdb_init())(inp)
        features.append(layers.LeakyReLU(0.2, name=f"{name}_lrelu{i}")(y))
    y = _conv(num_filters, f"{name}_conv5", _rdb_init())(layers.Concatenate(name=f"{name}_cat5")(features))
    return ScaledResidual(res_scale, name=f"{name}_out")([x, y])


def rrdb_block(x, num_filters=64, growth=32, res_scale=0.2, name="RRDB"):
    """Residual-in-residual dense block: three dense blocks and an outer scaled residual."""
    out = x
    for k in (1, 2, 3):
        out = residual_dense_block(out, num_filters, growth, res_scale, name=f"{name}_RDB{k}")
    return ScaledResidual(res_scale, name=f"{name}_out")([x, out])


def rrdb_generator(
    scale=4, num_filters=64, num_blocks=23, growth=32, res_scale=0.2, unshuffle=1, name="rrdb_generator"
):
    """ESRGAN's RRDBNet: conv_first, `num_blocks` RRDBs, trunk_conv + long skip, log2(scale) x
    (nearest x2 -> conv -> LeakyReLU), HRconv -> LeakyReLU -> conv_last. No batch norm.

    `scale` is 1, 2, 4 or 8. `unshuffle` (1, 2 or 4) reproduces BasicSR's Real-ESRGAN x2/x1 variants,
    which pixel-unshuffle the input and then upsample by scale * unshuffle.
    """
    if scale not in (1, 2, 4, 8) or unshuffle not in (1, 2, 4):
        raise ValueError(f"scale must be 1, 2, 4 or 8 and unshuffle 1, 2 or 4; got {scale}, {unshuffle}")
    num_up = int(math.log2(scale * unshuffle))
    inp = keras.Input((None, None, 3), name="lr")
    x = PixelUnshuffle(unshuffle, name="unshuffle")(inp) if unshuffle > 1 else inp
    fea = _conv(num_filters, "conv_first")(x)
    trunk = fea
    for n in range(num_blocks):
        trunk = rrdb_block(trunk, num_filters, growth, res_scale, name=f"RRDB_trunk_{n}")
    trunk = _conv(num_filters, "trunk_conv")(trunk)
    fea = layers.Add(name="long_skip")([fea, trunk])
    for i in range(1, num_up + 1):
        fea = layers.UpSampling2D(2, interpolation="nearest", name=f"up{i}")(fea)
        fea = _conv(num_filters, f"upconv{i}")(fea)
        fea = layers.LeakyReLU(0.2, name=f"upconv{i}_lrelu")(fea)
    fea = layers.LeakyReLU(0.2, name="HRconv_lrelu")(_conv(num_filters, "HRconv")(fea))
    out = _conv(3, "conv_last")(fea)
    return keras.Model(inp, out, name=name)


def srvgg_compact(scale=4, num_filters=64, num_convs=16, name="srvgg_compact"):
    """Real-ESRGAN's SRVGGNetCompact (xinntao/Real-ESRGAN `srvgg_arch.py`; the defaults are
    realesr-animevideov3's, realesr-general-x4v3 has 32 convs): conv 3x3 (3 -> F) + PReLU,
    `num_convs` x (conv 3x3 F -> F + PReLU), conv 3x3 F -> 3*scale^2, pixel shuffle, plus the
    nearest-upsampled input. Every convolution runs at LR resolution.

    PReLU has one slope per channel, 0.25 at first (torch.nn.PReLU). The pixel shuffle uses
    TensorFlow's depth_to_space channel order: PyTorch weights need conv_last's output channels
    permuted (esrgan.torch_reference.srvgg_state_dict).
    """
    if scale < 1 or num_filters < 1 or num_convs < 0:
        raise ValueError(f"scale and num_filters must be >= 1 and num_convs >= 0; got {scale}, {num_filters}, "
                         f"{num_convs}")
    inp = keras.Input((None, None, 3), name="lr")

    def prelu(n):
        return layers.PReLU(keras.initializers.Constant(0.25), shared_axes=[1, 2], name=f"prelu{n}")

    # He initialisation for PReLU(0.25): PyTorch's default init shrinks the signal about 5x per layer,
    # and a 16-layer trunk started that way did not learn in 1,400 steps here.
    he = keras.initializers.VarianceScaling(2.0 / (1.0 + 0.25**2), mode="fan_in", distribution="truncated_normal")
    x = prelu(0)(_conv(num_filters, "conv_first", he)(inp))
    for n in range(1, num_convs + 1):
        x = prelu(n)(_conv(num_filters, f"conv{n}", he)(x))
    # a small last layer: the model starts near its nearest-upsampled input, however large the trunk's output
    x = _conv(3 * scale * scale, "conv_last", keras.initializers.VarianceScaling(0.01, mode="fan_in"))(x)
    if scale > 1:
        x = PixelShuffle(scale, name="shuffle")(x)
        base = layers.UpSampling2D(scale, interpolation="nearest", name="upsampled_input")(inp)
    else:
        base = inp
    out = layers.Add(name="add_input")([x, base])
    return keras.Model(inp, out, name=name)


def discriminator(patch=128, num_filters=64, name="discriminator"):
    """VGG-style discriminator of ESRGAN (official `Discriminator_VGG_128`): 10 convs, 64 -> 512
    channels, each stage a 3x3 stride-1 conv and a 4x4 stride-2 conv, BN (except on the first
    conv) and LeakyReLU(0.2), then Dense(100) -> LeakyReLU -> Dense(1). Returns a raw logit.

    `patch` (HR crop size) must be a multiple of 32. Input RGB in [0, 1].
    """
    if patch % 32:
        raise ValueError(f"patch must be a multiple of 32, got {patch}")
    inp = keras.Input((patch, patch, 3), name="hr")
    nf = num_filters
    x = layers.Conv2D(nf, 3, padding="same", name="conv0_0")(inp)
    x = layers.LeakyReLU(0.2, name="lrelu0_0")(x)
    channels = [nf, nf * 2, nf * 4, nf * 8, nf * 8]
    for stage, ch in enumerate(channels):
        for j, (k, s) in enumerate(((3, 1), (4, 2))):
            if stage == 0 and j == 0:
                continue  # conv0_0 above (with bias, no BN)
            x = layers.Conv2D(ch, k, strides=s, padding="same", use_bias=False, name=f"conv{stage}_{j}")(x)
            x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"bn{stage}_{j}")(x)
            x = layers.LeakyReLU(0.2, name=f"lrelu{stage}_{j}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.LeakyReLU(0.2, name="lrelu_linear1")(layers.Dense(100, name="linear1")(x))
    out = layers.Dense(1, name="linear2")(x)
    return keras.Model(inp, out, name=name)
