"""ESRGAN losses as small objects carrying their weight.

Relativistic average GAN (Jolicoeur-Martineau; ESRGAN Eq. 1-3) with D_Ra(a, b) = sigmoid(C(a) - E[C(b)]),
computed from raw logits with sigmoid cross-entropy for numerical stability. The generator's total loss
is L_percep + 5e-3 * L_Ra + 1e-2 * L1 (paper, Sec. 3.2).
"""
import common  # noqa: F401  (quiet TensorFlow import)
import tensorflow as tf

from srgan.losses import PixelL1

GAN_WEIGHT = 5e-3
L1_WEIGHT = 1e-2
PERCEPTUAL_WEIGHT = 1.0


def _bce(logits, target):
    labels = tf.ones_like(logits) if target else tf.zeros_like(logits)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def _relativistic(a_logits, b_logits):
    """Logit of D_Ra(a, b) = C(a) - E_b[C(b)] (expectation over the batch)."""
    a = tf.cast(a_logits, tf.float32)
    return a - tf.reduce_mean(tf.cast(b_logits, tf.float32))


class RelativisticDiscriminatorLoss:
    """L_D = -E[log D_Ra(x_r, x_f)] - E[log(1 - D_Ra(x_f, x_r))].

    `average=True` halves the sum as the official training code does (the paper writes the sum).
    """

    def __init__(self, weight=1.0, average=True):
        self.weight = float(weight)
        self.average = bool(average)

    def __call__(self, real_logits, fake_logits):
        loss = _bce(_relativistic(real_logits, fake_logits), True) + _bce(_relativistic(fake_logits, real_logits), False)
        return self.weight * (0.5 * loss if self.average else loss)


class RelativisticGeneratorLoss:
    """L_G^Ra = -E[log(1 - D_Ra(x_r, x_f))] - E[log D_Ra(x_f, x_r)]: gradients flow from both real
    and fake logits through E[C(x_f)]. `average` as in RelativisticDiscriminatorLoss."""

    def __init__(self, weight=GAN_WEIGHT, average=True):
        self.weight = float(weight)
        self.average = bool(average)

    def __call__(self, real_logits, fake_logits):
        loss = _bce(_relativistic(real_logits, fake_logits), False) + _bce(_relativistic(fake_logits, real_logits), True)
        return self.weight * (0.5 * loss if self.average else loss)


class L1Loss(PixelL1):
    """weight * mean |sr - hr| (the paper's content loss L1, weight 1e-2 in the GAN stage)."""

    def __init__(self, weight=L1_WEIGHT):
        super().__init__(weight)


class PerceptualLoss:
    """weight * L1 distance of VGG features (ESRGAN: VGG19 conv5_4 before its ReLU).

    `feature_extractor` maps RGB in [0, 1] to a tensor, a list or a dict of feature maps (e.g.
    `common.vgg.vgg_features(("conv5_4",), before_activation=True)`); the L1 distances of all
    returned maps are summed.
    """

    def __init__(self, feature_extractor, weight=PERCEPTUAL_WEIGHT):
        self.feature_extractor = feature_extractor
        self.weight = float(weight)

    @staticmethod
    def _as_list(features):
        if isinstance(features, dict):
            return [features[k] for k in sorted(features)]
        if isinstance(features, (list, tuple)):
            return list(features)
        return [features]

    def __call__(self, hr, sr):
        real = self._as_list(self.feature_extractor(hr))
        fake = self._as_list(self.feature_extractor(sr))
        loss = tf.add_n([tf.reduce_mean(tf.abs(tf.cast(f, tf.float32) - tf.cast(tf.stop_gradient(r), tf.float32)))
                         for r, f in zip(real, fake)])
        return self.weight * loss


class GeneratorLoss:
    """ESRGAN's total generator loss L_G = L_percep + 5e-3 * L_G^Ra + 1e-2 * L1 (weights in the parts).

    Returns a dict with "total" and the three weighted terms, for logging.
    """

    def __init__(self, perceptual, adversarial=None, pixel=None):
        self.perceptual = perceptual
        self.adversarial = adversarial or RelativisticGeneratorLoss()
        self.pixel = pixel or L1Loss()

    def __call__(self, hr, sr, real_logits, fake_logits):
        parts = {"perceptual": self.perceptual(hr, sr), "gan": self.adversarial(real_logits, fake_logits),
                 "l1": self.pixel(hr, sr)}
        return {"total": tf.add_n(list(parts.values())), **parts}
