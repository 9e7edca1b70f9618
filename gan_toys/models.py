"""Generator and discriminator builders of the three toy experiments (thesis §4.3-4.5).

Discriminators return logits (no sigmoid); `GAN` applies sigmoid cross-entropy.
"""
import common  # noqa: F401  (quiet TensorFlow import)
import keras
from keras import layers


def _thesis_init():
    """The thesis's initialisation: truncated-normal weights (sigma 0.1), biases 0.1."""
    return {"kernel_initializer": keras.initializers.TruncatedNormal(stddev=0.1),
            "bias_initializer": keras.initializers.Constant(0.1)}


# ---------------------------------------------------------------- §4.3 Gaussian

def linear_generator(latent_dim: int = 1, name: str = "linear_generator") -> keras.Model:
    """G(z) = a*z + b, starting at a = 1, b = 0 (mean b, standard deviation |a| for z ~ N(0, 1))."""
    return keras.Sequential([
        keras.Input((latent_dim,)),
        layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros", name="affine"),
    ], name=name)


def mlp_discriminator(units: int = 32, hidden: int = 3, thesis_init: bool = True, input_dim: int = 1,
                      name: str = "mlp_discriminator") -> keras.Model:
    """`hidden` ReLU layers of `units`, then one logit."""
    init = _thesis_init() if thesis_init else {}
    return keras.Sequential(
        [keras.Input((input_dim,))]
        + [layers.Dense(units, activation="relu", name=f"hidden{i + 1}", **init) for i in range(hidden)]
        + [layers.Dense(1, name="logit", **init)], name=name)


# ---------------------------------------------------------------- §4.4 mixture

def mlp_generator(latent_dim: int = 4, units: int = 256, hidden: int = 3, dropout: float = 0.0,
                  output_dim: int = 1, name: str = "mlp_generator") -> keras.Model:
    """`hidden` ReLU layers of `units` with optional dropout between them, then a linear output."""
    stack = [keras.Input((latent_dim,))]
    for i in range(hidden):
        if i and dropout:
            stack.append(layers.Dropout(dropout, name=f"dropout{i}"))
        stack.append(layers.Dense(units, activation="relu", name=f"hidden{i + 1}"))
    stack.append(layers.Dense(output_dim, name="sample"))
    return keras.Sequential(stack, name=name)


# ---------------------------------------------------------------- §4.5 sinusoid images

def conv_generator(latent_dim: int = 32, filters: int = 16, l2: float = 1e-4, batch_norm: bool = True,
                   leaky: float = 0.0, synchronized: bool = False, bias: bool = True,
                   name: str = "conv_generator") -> keras.Model:
    """Dense -> 13x13xF -> Conv2DTranspose (4x4, stride 2) 26x26xF -> Conv2DTranspose (4x4, stride 2)
    52x52x1, sigmoid (pixels in [0, 1]) -> cropped to 50x50x1.

    4x4 kernels at stride 2 overlap evenly (no checkerboard); the crop takes the border pixel off
    each side. With `batch_norm`, batch normalisation before the hidden activations (as in DCGAN);
    `synchronized`: its batch statistics are those of the global batch under a `tf.distribute`
    strategy with several replicas (as on one device), not of each replica's part.
    """
    reg = keras.regularizers.L2(l2) if l2 else None

    def activation(stack, tag):
        if batch_norm:
            stack.append(layers.BatchNormalization(synchronized=synchronized, name=f"bn_{tag}"))
        stack.append(layers.LeakyReLU(leaky, name=f"lrelu_{tag}") if leaky else layers.ReLU(name=f"relu_{tag}"))

    stack = [keras.Input((latent_dim,)),
             layers.Dense(13 * 13 * filters, use_bias=bias and not batch_norm, kernel_regularizer=reg, name="project")]
    activation(stack, "project")
    stack += [layers.Reshape((13, 13, filters)),
              layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=bias and not batch_norm,
                                     kernel_regularizer=reg, name="up1")]
    activation(stack, "up1")
    stack += [layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="sigmoid", use_bias=bias,
                                     kernel_regularizer=reg, name="up2"),
              layers.Cropping2D(1, name="crop")]
    return keras.Sequential(stack, name=name)


def conv_discriminator(size: int = 50, filters: int = 8, kernel: int = 4, l2: float = 1e-4,
                       name: str = "conv_discriminator") -> keras.Model:
    """Two stride-2 convolutions (F, 2F filters, leaky ReLU 0.2) -> Dense logit."""
    reg = keras.regularizers.L2(l2) if l2 else None
    return keras.Sequential([
        keras.Input((size, size, 1)),
        layers.Conv2D(filters, kernel, strides=2, padding="same", kernel_regularizer=reg, name="conv1"),
        layers.LeakyReLU(0.2),
        layers.Conv2D(2 * filters, kernel, strides=2, padding="same", kernel_regularizer=reg, name="conv2"),
        layers.LeakyReLU(0.2),
        layers.Flatten(),
        layers.Dense(1, kernel_regularizer=reg, name="logit"),
    ], name=name)
