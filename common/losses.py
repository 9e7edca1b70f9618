"""The losses the chapters share, as small objects carrying their weight: pixel (L1, MSE), the GAN
losses (binary cross-entropy as in SRGAN, relativistic average as in ESRGAN), feature (perceptual)
losses, a low-pass colour anchor and total variation.

Each call returns `weight * loss` as a float32 scalar, the mean over the replica's batch. Keras'
loss classes compute the per-pixel or per-image terms, with `reduction=None`: their own reduction
also divides by the number of replicas under tf.distribute (`scale_loss_for_distribution`), which
the training steps already do (common.training.num_replicas), so the mean is taken here.
Feature networks (which layers of which network) are built in common.perceptual.
"""
import keras
import tensorflow as tf

import common  # noqa: F401  (quiet TensorFlow import)

DISTANCES = ("l1", "l2")


def _f32(x):
    return tf.cast(x, tf.float32)


def _mean(loss, y_true, y_pred):
    """The mean of a Keras loss' per-element values (see the module's note on reduction)."""
    return tf.reduce_mean(loss(_f32(y_true), _f32(y_pred)))


# --- pixels -------------------------------------------------------------------------------------


class PixelLoss:
    """weight * the mean of a Keras per-pixel loss of HR and SR (subclasses name which)."""

    keras_loss = keras.losses.MeanAbsoluteError

    def __init__(self, weight: float = 1.0):
        self.weight = float(weight)
        self._loss = self.keras_loss(reduction=None)

    def __call__(self, hr, sr):
        return self.weight * _mean(self._loss, hr, sr)

    def __repr__(self):
        return f"{type(self).__name__}(weight={self.weight:g})"


class PixelMSE(PixelLoss):
    """Mean squared error over pixels (SRResNet-MSE)."""

    keras_loss = keras.losses.MeanSquaredError


class PixelL1(PixelLoss):
    """Mean absolute error over pixels (ESRGAN's L1; faster to a high PSNR than MSE, as in EDSR)."""

    keras_loss = keras.losses.MeanAbsoluteError


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


class TotalVariation:
    """Anisotropic total variation of SR (sum of absolute neighbour differences per image, batch mean)."""

    def __init__(self, weight: float = 2e-8):
        self.weight = float(weight)

    def __call__(self, sr):
        return self.weight * tf.reduce_mean(tf.image.total_variation(_f32(sr)))

    def __repr__(self):
        return f"TotalVariation(weight={self.weight:g})"


class SumOfLosses:
    """Several (hr, sr) losses added: e.g. a feature loss plus a small pixel term."""

    def __init__(self, *losses):
        self.losses = losses

    def __call__(self, hr, sr):
        return tf.add_n([loss(hr, sr) for loss in self.losses])

    def __repr__(self):
        return " + ".join(map(repr, self.losses))


# --- GAN losses on discriminator logits ----------------------------------------------------------

_BCE = keras.losses.BinaryCrossentropy(from_logits=True, reduction=None)


def _bce(logits, target: bool):
    """Mean sigmoid cross-entropy of logits against all-real (True) or all-fake (False) labels."""
    logits = _f32(logits)
    labels = tf.ones_like(logits) if target else tf.zeros_like(logits)
    return _mean(_BCE, labels, logits)


class AdversarialLoss:
    """The generator's non-saturating loss -log D(G(x)) (Goodfellow et al.; SRGAN's 1e-3 default)."""

    def __init__(self, weight: float = 1e-3):
        self.weight = float(weight)

    def __call__(self, fake_logits):
        return self.weight * _bce(fake_logits, True)

    def __repr__(self):
        return f"AdversarialLoss(weight={self.weight:g})"


class DiscriminatorLoss:
    """-log D(HR) - log(1 - D(G(LR))): binary cross-entropy, real = 1, fake = 0."""

    def __init__(self, weight: float = 1.0):
        self.weight = float(weight)

    def __call__(self, real_logits, fake_logits):
        return self.weight * (_bce(real_logits, True) + _bce(fake_logits, False))

    def __repr__(self):
        return f"DiscriminatorLoss(weight={self.weight:g})"


def r1_penalty(discriminator, real, training: bool = True):
    """(logits of `real`, E over the batch of |grad_x logit(x)|^2 at the real images): the R1 penalty
    (Mescheder et al., 2018), which keeps a discriminator from growing steep around the data and
    saturating. Call it inside the discriminator's gradient tape, which differentiates it again."""
    real = _f32(real)
    with tf.GradientTape() as tape:
        tape.watch(real)
        logits = discriminator(real, training=training)
        total = tf.reduce_sum(_f32(logits))  # under batch norm (training) it couples the batch's images
    grad = tape.gradient(total, real)
    return logits, tf.reduce_mean(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]))


def relativistic_logits(a_logits, b_logits):
    """Logit of D_Ra(a, b) = sigmoid(C(a) - E_b[C(b)]) (Jolicoeur-Martineau; the expectation over
    the replica's batch)."""
    return _f32(a_logits) - tf.reduce_mean(_f32(b_logits))


class _RelativisticLoss:
    """Sigmoid cross-entropy of D_Ra(x_r, x_f) against `real_label` and of D_Ra(x_f, x_r) against
    the other label; `average=True` halves the sum as the official ESRGAN code does (the paper
    writes the sum)."""

    real_label = True

    def __init__(self, weight=1.0, average=True):
        self.weight = float(weight)
        self.average = bool(average)

    def __call__(self, real_logits, fake_logits):
        loss = (_bce(relativistic_logits(real_logits, fake_logits), self.real_label)
                + _bce(relativistic_logits(fake_logits, real_logits), not self.real_label))
        return self.weight * (0.5 * loss if self.average else loss)

    def __repr__(self):
        return f"{type(self).__name__}(weight={self.weight:g})"


class RelativisticDiscriminatorLoss(_RelativisticLoss):
    """L_D = -E[log D_Ra(x_r, x_f)] - E[log(1 - D_Ra(x_f, x_r))] (ESRGAN Eq. 2)."""

    real_label = True


class RelativisticGeneratorLoss(_RelativisticLoss):
    """L_G^Ra = -E[log(1 - D_Ra(x_r, x_f))] - E[log D_Ra(x_f, x_r)] (ESRGAN Eq. 3; its 5e-3 default):
    gradients flow from both real and fake logits through E[C(x_f)]."""

    real_label = False

    def __init__(self, weight=5e-3, average=True):
        super().__init__(weight, average)


# --- feature (perceptual) losses -----------------------------------------------------------------


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
    `scale` multiplies the features first (SRGAN's 1/12.75 for ImageNet VGG). With ImageNet VGG19
    the raw distances keep the papers' scaling; the offline substitutes (common.perceptual) use
    `normalise=True`: each layer's distance relative to its HR features' magnitude.
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
