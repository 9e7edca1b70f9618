"""SRGAN's losses (Ledig et al., 2017, section 2.2): the content losses by name; the pixel,
adversarial and total-variation terms are the shared ones of common.losses.

Images passed to the generator losses are in the generator's output range [-1, 1] (HR targets are
mapped there too); each call returns `weight * loss` as a float32 scalar. The perceptual loss of
the paper is `content_loss(...)` + `AdversarialLoss(1e-3)`.
"""
import common  # noqa: F401  (quiet TensorFlow import)
# The paper's pixel, adversarial, discriminator and TV terms (this chapter's users import them from here).
from common.losses import AdversarialLoss, DiscriminatorLoss, FeatureLoss, PixelL1, PixelMSE, TotalVariation  # noqa: F401
from srgan.config import CONTENT_LOSSES  # noqa: F401

VGG_SCALE = 1.0 / 12.75  # the paper rescales VGG feature maps to match the MSE loss' magnitude
_VGG_LAYERS = {"vgg22": "conv2_2", "vgg54": "conv5_4"}
# Discriminator layers standing in for VGG22 / VGG54 in the offline substitutes: shallow layers,
# or one layer per resolution down to the deepest.
DISC_LAYERS = {"vgg22": ("lrelu1", "lrelu2"), "vgg54": ("lrelu1", "lrelu3", "lrelu5", "lrelu7")}


def to_unit_range(images):
    """The generator's range [-1, 1] -> [0, 1] (VGG's input)."""
    return (images + 1.0) * 0.5


class VGGContentLoss(FeatureLoss):
    """MSE between VGG19 feature maps (after the ReLU) of HR and SR, both scaled by 1/12.75.

    `feature_extractor` maps RGB [0, 1] to the features of `layer` ("conv2_2" or "conv5_4"), e.g.
    `common.vgg.vgg_features(layers=("conv5_4",))`; images in [-1, 1] are mapped to [0, 1] first.
    """

    def __init__(self, feature_extractor, layer: str = "conv5_4", weight: float = 1.0, scale: float = VGG_SCALE):
        super().__init__(feature_extractor, "l2", weight=weight, scale=scale, to_input=to_unit_range,
                         description=f"vgg19 imagenet {layer} after ReLU")
        self.layer = layer

    def __repr__(self):
        return f"VGGContentLoss(layer={self.layer!r}, weight={self.weight:g})"


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
    from common.perceptual import PERCEPTUAL_NETWORKS, hidden_layers
    from common.vgg import vgg_features

    layer = _VGG_LAYERS[name]
    if perceptual == "vgg-imagenet":
        extractor = vgg_features(layers=(layer,), before_activation=False, weights=vgg_weights)
        extractor.trainable = False
        return VGGContentLoss(extractor, layer=layer, weight=weight)
    if perceptual == "vgg-random":
        extractor = vgg_features(layers=(layer,), before_activation=False, weights=None, random_init="he_normal")
        return FeatureLoss(extractor, "l2", normalise=True, weight=weight, to_input=to_unit_range,
                           description=f"vgg19 random (he_normal, seeded) {layer} after ReLU")
    if perceptual in ("disc-features", "pretrained-disc"):
        if discriminator is None:
            raise ValueError(f"perceptual {perceptual!r} needs a discriminator")
        layers = DISC_LAYERS[name]
        return FeatureLoss(hidden_layers(discriminator, layers), "l2", normalise=True, weight=weight,
                           description=f"{perceptual}: {discriminator.name} {', '.join(layers)}")
    raise ValueError(f"unknown perceptual network {perceptual!r}; choose from {', '.join(PERCEPTUAL_NETWORKS)}")
