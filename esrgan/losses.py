"""ESRGAN's losses (Wang et al., 2018, Sec. 3.2): the generator's total L_G = L_percep + 5e-3 * L_G^Ra
+ 1e-2 * L1, from the shared pieces of common.losses.

Relativistic average GAN (Jolicoeur-Martineau; ESRGAN Eq. 1-3) with D_Ra(a, b) = sigmoid(C(a) - E[C(b)]),
computed from raw logits with sigmoid cross-entropy for numerical stability
(common.losses.RelativisticDiscriminatorLoss / RelativisticGeneratorLoss).
"""
import tensorflow as tf

import common  # noqa: F401  (quiet TensorFlow import)
from common.losses import (FeatureLoss, LowPassLoss, PixelL1, RelativisticDiscriminatorLoss,  # noqa: F401
                           RelativisticGeneratorLoss, SumOfLosses)

GAN_WEIGHT = 5e-3
L1_WEIGHT = 1e-2
PERCEPTUAL_WEIGHT = 1.0


class L1Loss(PixelL1):
    """weight * mean |sr - hr| (the paper's content loss L1, weight 1e-2 in the GAN stage)."""

    def __init__(self, weight=L1_WEIGHT):
        super().__init__(weight)


def pixel_loss(scale: int, l1_weight: float = L1_WEIGHT, lowpass_weight: float = 0.0):
    """The pixel terms of L_G: l1_weight * L1, plus lowpass_weight * |pool(SR) - pool(HR)| over
    scale x scale blocks when lowpass_weight is set (it anchors colour and brightness)."""
    pixel = L1Loss(l1_weight)
    return SumOfLosses(pixel, LowPassLoss(scale, lowpass_weight)) if lowpass_weight else pixel


def normalised_feature_loss(network, weight: float, to_input=None, description: str = "") -> FeatureLoss:
    """weight * L1 of `network`'s feature maps, each layer's distance relative to its HR features'
    magnitude: the form of the offline substitutes for ImageNet VGG (common.perceptual)."""
    return FeatureLoss(network, "l1", normalise=True, weight=weight, to_input=to_input, description=description)


class PerceptualLoss(FeatureLoss):
    """weight * L1 distance of VGG features (ESRGAN: VGG19 conv5_4 before its ReLU).

    `feature_extractor` maps RGB in [0, 1] to a tensor, a list or a dict of feature maps (e.g.
    `common.vgg.vgg_features(("conv5_4",), before_activation=True)`); the L1 distances of all
    returned maps are summed.
    """

    def __init__(self, feature_extractor, weight=PERCEPTUAL_WEIGHT):
        super().__init__(feature_extractor, "l1", weight=weight, description="vgg19 before ReLU")

    def __repr__(self):
        return f"PerceptualLoss(weight={self.weight:g})"


class GeneratorLoss:
    """ESRGAN's total generator loss L_G = L_percep + 5e-3 * L_G^Ra + 1e-2 * L1 (weights in the parts).

    Returns a dict with "total" and the three weighted terms, for logging.
    """

    def __init__(self, perceptual, adversarial=None, pixel=None):
        self.perceptual = perceptual
        self.adversarial = adversarial or RelativisticGeneratorLoss(GAN_WEIGHT)
        self.pixel = pixel or L1Loss()

    def __call__(self, hr, sr, real_logits, fake_logits):
        parts = {"perceptual": self.perceptual(hr, sr), "gan": self.adversarial(real_logits, fake_logits),
                 "l1": self.pixel(hr, sr)}
        return {"total": tf.add_n(list(parts.values())), **parts}
