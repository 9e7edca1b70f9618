"""SRGAN losses as small objects carrying their weight (Ledig et al., 2017, section 2.2).

Images passed to the generator losses are in the generator's output range [-1, 1] (HR targets are
mapped there too); each call returns `weight * loss` as a float32 scalar. The perceptual loss of
the paper is `content_loss(...)` + `AdversarialLoss(1e-3)`.
"""
import common  # noqa: F401  (quiet TensorFlow import)
import tensorflow as tf

VGG_SCALE = 1.0 / 12.75  # the paper rescales VGG feature maps to match the MSE loss' magnitude
CONTENT_LOSSES = ("mse", "l1", "vgg22", "vgg54")
_VGG_LAYERS = {"vgg22": "conv2_2", "vgg54": "conv5_4"}


def _f32(x):
    return tf.cast(x, tf.float32)


class PixelMSE:
    """Mean squared error over pixels (SRResNet-MSE)."""

    def __init__(self, weight: float = 1.0):
        self.weight = float(weight)

    def __call__(self, hr, sr):
        return self.weight * tf.reduce_mean(tf.square(_f32(hr) - _f32(sr)))

    def __repr__(self):
        return f"PixelMSE(weight={self.weight:g})"


class PixelL1:
    """Mean absolute error over pixels (not in the paper; converges faster for PSNR, as in EDSR)."""

    def __init__(self, weight: float = 1.0):
        self.weight = float(weight)

    def __call__(self, hr, sr):
        return self.weight * tf.reduce_mean(tf.abs(_f32(hr) - _f32(sr)))

    def __repr__(self):
        return f"{type(self).__name__}(weight={self.weight:g})"


class VGGContentLoss:
    """MSE between VGG19 feature maps (after the ReLU) of HR and SR, both scaled by 1/12.75.

    `feature_extractor` maps RGB [0, 1] to the features of `layer` ("conv2_2" or "conv5_4"), e.g.
    `common.vgg.vgg_features(layers=("conv5_4",))`; images in [-1, 1] are mapped to [0, 1] first.
    """

    def __init__(self, feature_extractor, layer: str = "conv5_4", weight: float = 1.0, scale: float = VGG_SCALE):
        self.feature_extractor = feature_extractor
        self.layer = layer
        self.weight = float(weight)
        self.scale = float(scale)

    def features(self, images):
        out = self.feature_extractor((_f32(images) + 1.0) * 0.5, training=False)
        if isinstance(out, dict):
            out = out[self.layer]
        elif isinstance(out, (list, tuple)):
            out = out[0]
        return _f32(out) * self.scale

    def __call__(self, hr, sr):
        target = tf.stop_gradient(self.features(hr))
        return self.weight * tf.reduce_mean(tf.square(target - self.features(sr)))

    def __repr__(self):
        return f"VGGContentLoss(layer={self.layer!r}, weight={self.weight:g})"


class AdversarialLoss:
    """Generator's adversarial loss -log D(G(x)), on discriminator logits of generated images."""

    def __init__(self, weight: float = 1e-3):
        self.weight = float(weight)

    def __call__(self, fake_logits):
        fake_logits = _f32(fake_logits)
        loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(fake_logits), logits=fake_logits)
        return self.weight * tf.reduce_mean(loss)

    def __repr__(self):
        return f"AdversarialLoss(weight={self.weight:g})"


class DiscriminatorLoss:
    """-log D(HR) - log(1 - D(G(LR))), on logits (binary cross-entropy, real = 1, fake = 0)."""

    def __init__(self, weight: float = 1.0):
        self.weight = float(weight)

    def __call__(self, real_logits, fake_logits):
        real_logits, fake_logits = _f32(real_logits), _f32(fake_logits)
        real = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(real_logits), logits=real_logits)
        fake = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(fake_logits), logits=fake_logits)
        return self.weight * (tf.reduce_mean(real) + tf.reduce_mean(fake))

    def __repr__(self):
        return f"DiscriminatorLoss(weight={self.weight:g})"


class TotalVariation:
    """Anisotropic total variation of SR (sum of absolute neighbour differences per image, batch mean)."""

    def __init__(self, weight: float = 2e-8):
        self.weight = float(weight)

    def __call__(self, sr):
        return self.weight * tf.reduce_mean(tf.image.total_variation(_f32(sr)))

    def __repr__(self):
        return f"TotalVariation(weight={self.weight:g})"


# Discriminator layers standing in for VGG22 / VGG54 in the offline substitutes: shallow layers,
# or one layer per resolution down to the deepest.
DISC_LAYERS = {"vgg22": ("lrelu1", "lrelu2"), "vgg54": ("lrelu1", "lrelu3", "lrelu5", "lrelu7")}


def content_loss(name: str, vgg_weights="imagenet", weight: float = 1.0, perceptual: str = "vgg-imagenet",
                 discriminator=None):
    """The paper's content losses by name: "mse" or "l1" (pixels), "vgg22" or "vgg54" (features).

    `perceptual` picks the feature network of "vgg22"/"vgg54" (see common.perceptual):
    "vgg-imagenet" (the paper: `vgg_weights` "imagenet", a weights file, or None = random, unscaled:
    for tests), "vgg-random" (He-normal VGG19, per-layer normalised distances), "disc-features" /
    "pretrained-disc" (hidden layers of `discriminator`, normalised; the GAN's own or a frozen one).
    """
    if name == "mse":
        return PixelMSE(weight)
    if name == "l1":
        return PixelL1(weight)
    if name not in _VGG_LAYERS:
        raise ValueError(f"unknown content loss {name!r}; choose from {', '.join(CONTENT_LOSSES)}")
    from common.perceptual import PERCEPTUAL_NETWORKS, FeatureLoss, hidden_layers
    from common.vgg import vgg_features

    layer = _VGG_LAYERS[name]
    if perceptual == "vgg-imagenet":
        extractor = vgg_features(layers=(layer,), before_activation=False, weights=vgg_weights)
        extractor.trainable = False
        return VGGContentLoss(extractor, layer=layer, weight=weight)
    if perceptual == "vgg-random":
        extractor = vgg_features(layers=(layer,), before_activation=False, weights=None, random_init="he_normal")
        return FeatureLoss(extractor, "l2", normalise=True, weight=weight, to_input=lambda x: (x + 1.0) * 0.5,
                           description=f"vgg19 random (he_normal, seeded) {layer} after ReLU")
    if perceptual in ("disc-features", "pretrained-disc"):
        if discriminator is None:
            raise ValueError(f"perceptual {perceptual!r} needs a discriminator")
        layers = DISC_LAYERS[name]
        return FeatureLoss(hidden_layers(discriminator, layers), "l2", normalise=True, weight=weight,
                           description=f"{perceptual}: {discriminator.name} {', '.join(layers)}")
    raise ValueError(f"unknown perceptual network {perceptual!r}; choose from {', '.join(PERCEPTUAL_NETWORKS)}")
