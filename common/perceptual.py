"""Perceptual (feature) losses that work with or without ImageNet VGG19 weights.

A feature loss compares the feature maps a frozen network gives for HR and SR. With ImageNet
VGG19 (the papers' choice) the raw distances keep the papers' scaling. Offline substitutes:

* ``vgg-random``: VGG19 with He-normal random weights (Liu et al., "Generic Perceptual Loss",
  CVPR 2021: untrained deep networks still measure structure). Raw distances of random features
  are tiny and differ by orders of magnitude between layers, so each layer's distance is divided
  by the magnitude of its HR features (``normalise=True``): the loss is a relative error, about
  the same size whatever the weights.
* ``disc-features``: feature matching on the GAN's own discriminator (Salimans et al., 2016, per
  image as in pix2pixHD): its hidden layers, shared with the discriminator being trained.
* a frozen pretrained discriminator's hidden layers (what a chapter ships or imports).

Callers pass images in their own range; `to_input` maps them to the network's input range.
"""
import keras
import tensorflow as tf

import common  # noqa: F401  (quiet TensorFlow import)

PERCEPTUAL_NETWORKS = ("vgg-imagenet", "vgg-random", "disc-features", "pretrained-disc")
DISTANCES = ("l1", "l2")


def _f32(x):
    return tf.cast(x, tf.float32)


def _as_list(features) -> list:
    if isinstance(features, dict):
        return [features[k] for k in sorted(features)]
    if isinstance(features, (list, tuple)):
        return list(features)
    return [features]


def layer_distance(real, fake, distance: str = "l2", normalise: bool = False):
    """Mean |fake - real| (l1) or mean (fake - real)^2 (l2) of one feature map; `normalise`
    divides by the same statistic of `real` (mean |real| or mean real^2): a relative error.
    `real` carries no gradient."""
    real, fake = tf.stop_gradient(_f32(real)), _f32(fake)
    if distance == "l1":
        value, size = tf.reduce_mean(tf.abs(fake - real)), tf.reduce_mean(tf.abs(real))
    elif distance == "l2":
        value, size = tf.reduce_mean(tf.square(fake - real)), tf.reduce_mean(tf.square(real))
    else:
        raise ValueError(f"unknown distance {distance!r}; choose from {', '.join(DISTANCES)}")
    return value / (size + 1e-12) if normalise else value


class FeatureLoss:
    """weight * sum over layers of layer_distance(network(HR), network(SR)).

    `network` maps images (after `to_input`) to a tensor, a list or a dict of feature maps;
    `scale` multiplies the features first (SRGAN's 1/12.75 for ImageNet VGG).
    """

    def __init__(self, network, distance: str = "l2", normalise: bool = False, weight: float = 1.0,
                 scale: float = 1.0, to_input=None, description: str = ""):
        if distance not in DISTANCES:
            raise ValueError(f"unknown distance {distance!r}; choose from {', '.join(DISTANCES)}")
        self.network, self.distance, self.normalise = network, distance, bool(normalise)
        self.weight, self.scale = float(weight), float(scale)
        self.to_input = to_input or (lambda x: x)
        self.description = description

    def features(self, images) -> list:
        out = _as_list(self.network(self.to_input(_f32(images))))  # Keras models default to inference mode
        return [_f32(f) * self.scale for f in out] if self.scale != 1.0 else [_f32(f) for f in out]

    def __call__(self, hr, sr):
        pairs = zip(self.features(hr), self.features(sr))
        total = tf.add_n([layer_distance(r, f, self.distance, self.normalise) for r, f in pairs])
        return self.weight * total

    def describe(self) -> dict:
        """What a checkpoint's JSON records about this loss."""
        return {"network": self.description, "distance": self.distance, "normalised": self.normalise,
                "weight": self.weight, "feature_scale": self.scale}

    def __repr__(self):
        return f"FeatureLoss({self.description or type(self.network).__name__}, {self.distance}, weight={self.weight:g})"


def hidden_layers(model: keras.Model, names, input_shape=(None, None, 3)) -> keras.Model:
    """A model of any input size giving `model`'s layers `names` (a dict keyed by name), built by
    calling `model`'s own layers again (the weights are shared, so a discriminator's trunk follows
    its training). Works for plain chains of layers such as the SRGAN/ESRGAN discriminators."""
    wanted, outputs = list(names), {}
    inputs = keras.Input(input_shape, name=f"{model.name}_features_input")
    x = inputs
    for layer in model.layers[1:]:
        if len(outputs) == len(wanted):
            break
        if isinstance(layer, (keras.layers.Flatten, keras.layers.Dense)):
            break
        x = layer(x)
        if layer.name in wanted:
            outputs[layer.name] = x
    missing = [n for n in wanted if n not in outputs]
    if missing:
        raise ValueError(f"{model.name} has no convolutional layer {missing[0]!r}")
    return keras.Model(inputs, outputs, name=f"{model.name}_features")


def frozen(model: keras.Model) -> keras.Model:
    """`model` with its weights excluded from training (a fixed feature network)."""
    model.trainable = False
    return model


class LowPassLoss:
    """weight * mean |pool(SR) - pool(HR)| over `pool` x `pool` blocks: the SR image, averaged back
    to the LR grid, should match the HR's. It pins colour and brightness (what an offline feature
    network does not see) and leaves the detail inside each block to the adversarial loss."""

    def __init__(self, pool: int, weight: float = 1.0):
        self.pool, self.weight = int(pool), float(weight)

    def __call__(self, hr, sr):
        down = lambda x: tf.nn.avg_pool2d(_f32(x), self.pool, self.pool, "VALID")  # noqa: E731
        return self.weight * tf.reduce_mean(tf.abs(down(sr) - tf.stop_gradient(down(hr))))

    def __repr__(self):
        return f"LowPassLoss(pool={self.pool}, weight={self.weight:g})"


class SumOfLosses:
    """Several (hr, sr) losses added: e.g. a feature loss plus a small pixel term."""

    def __init__(self, *losses):
        self.losses = losses

    def __call__(self, hr, sr):
        return tf.add_n([loss(hr, sr) for loss in self.losses])

    def __repr__(self):
        return " + ".join(map(repr, self.losses))
