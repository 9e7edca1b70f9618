"""SRGAN networks (Ledig et al., 2017): the SRResNet generator and the VGG-style discriminator.

Value ranges (recorded in every checkpoint's JSON so `common.inference` can map pixels):
  * generator input: LR RGB in [0, 1]  -> meta "input_range": [0, 1]
  * generator output: SR RGB in [-1, 1] -> meta "output_range": [-1, 1]
    (a linear last layer by default, as in the paper's figure; not clipped; map back with (y + 1) / 2)
  * discriminator input: HR or SR RGB in [-1, 1]; output: one logit per image (no sigmoid).

Batch normalisation uses Keras momentum 0.9 (the moving averages keep 90 % of their value per step),
i.e. PyTorch's momentum=0.1; Keras' own default would be 0.99. Epsilon is Keras' 1e-3.
"""
import math

import common  # noqa: F401  (quiet TensorFlow import)
import keras
from keras import layers

from common.layers import BlockConv2D, PixelShuffle

BN_MOMENTUM = 0.9


def _prelu(name):
    # One slope per channel, shared over height and width (the paper's PReLU).
    return layers.PReLU(shared_axes=[1, 2], name=name)


def _bn(name, momentum):
    return layers.BatchNormalization(momentum=momentum, name=name)


def _upsample_steps(scale: int) -> list[int]:
    if scale == 3:
        return [3]
    steps = int(round(math.log2(scale))) if scale >= 2 else -1
    if steps < 1 or 2**steps != scale:
        raise ValueError(f"SRResNet scale must be 2, 3, 4 or 8 (a power of two or 3), got {scale}")
    return [2] * steps


def srresnet(
    scale: int = 4,
    num_filters: int = 64,
    num_blocks: int = 16,
    batch_norm: bool = True,
    output_activation: str | None = None,
    bn_momentum: float = BN_MOMENTUM,
) -> keras.Model:
    """SRResNet generator: LR RGB [0, 1] (any size) -> SR RGB [-1, 1] (`scale` times larger).

    9x9 conv + PReLU; `num_blocks` residual blocks (conv3x3-BN-PReLU-conv3x3-BN + skip);
    conv3x3-BN + long skip; log2(scale) x (conv3x3 to 4*num_filters, PixelShuffle(2), PReLU);
    9x9 conv to 3 channels. `batch_norm=False` drops every BN (EDSR-style ablation).
    `output_activation="tanh"` bounds the output (needed for krasserm's published weights).
    """
    def bn(x, name):
        return _bn(name, bn_momentum)(x) if batch_norm else x

    lr = keras.Input(shape=(None, None, 3), name="lr")
    x = layers.Conv2D(num_filters, 9, padding="same", name="head_conv")(lr)
    x = head = _prelu("head_prelu")(x)

    for i in range(1, num_blocks + 1):
        skip = x
        x = layers.Conv2D(num_filters, 3, padding="same", name=f"block{i}_conv1")(x)
        x = bn(x, f"block{i}_bn1")
        x = _prelu(f"block{i}_prelu")(x)
        x = layers.Conv2D(num_filters, 3, padding="same", name=f"block{i}_conv2")(x)
        x = bn(x, f"block{i}_bn2")
        x = layers.Add(name=f"block{i}_add")([skip, x])

    x = layers.Conv2D(num_filters, 3, padding="same", name="body_conv")(x)
    x = bn(x, "body_bn")
    x = layers.Add(name="body_add")([head, x])

    for i, r in enumerate(_upsample_steps(scale), start=1):
        x = layers.Conv2D(num_filters * r * r, 3, padding="same", name=f"up{i}_conv")(x)
        x = PixelShuffle(r, name=f"up{i}_shuffle")(x)
        x = _prelu(f"up{i}_prelu")(x)

    # Conv2D(3, 9) on 4x4 pixel blocks: same weights and outputs, ~2.7x faster on oneDNN CPUs.
    sr = BlockConv2D(3, 9, activation=output_activation, name="tail_conv")(x)
    return keras.Model(lr, sr, name="srresnet")


def discriminator(patch: int = 96, num_filters: int = 64, bn_momentum: float = BN_MOMENTUM) -> keras.Model:
    """SRGAN discriminator: HR/SR RGB [-1, 1] of size patch x patch -> one logit per image.

    conv3x3(64) + LeakyReLU(0.2); seven conv3x3-BN-LeakyReLU blocks with
    (filters, stride) = (64,2) (128,1) (128,2) (256,1) (256,2) (512,1) (512,2);
    Dense(16 * num_filters = 1024) + LeakyReLU(0.2); Dense(1). `patch` must be a multiple of 16.
    """
    if patch % 16:
        raise ValueError(f"discriminator patch must be a multiple of 16, got {patch}")
    f = num_filters
    blocks = [(f, 2), (2 * f, 1), (2 * f, 2), (4 * f, 1), (4 * f, 2), (8 * f, 1), (8 * f, 2)]

    image = keras.Input(shape=(patch, patch, 3), name="image")
    x = layers.Conv2D(f, 3, padding="same", name="conv0")(image)
    x = layers.LeakyReLU(negative_slope=0.2, name="lrelu0")(x)
    for i, (filters, stride) in enumerate(blocks, start=1):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", name=f"conv{i}")(x)
        x = _bn(f"bn{i}", bn_momentum)(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"lrelu{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(16 * f, name="dense")(x)
    x = layers.LeakyReLU(negative_slope=0.2, name="dense_lrelu")(x)
    logit = layers.Dense(1, name="logit")(x)
    return keras.Model(image, logit, name="srgan_discriminator")
