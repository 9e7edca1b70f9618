"""ESRGAN's training steps (Wang et al., 2018) as Keras models.

`ESRGAN.train_step((lr, hr))` updates both networks from one forward pass, as the official code
does (the generator is scored by the discriminator before this step's discriminator update, and
the discriminator sees this step's generated images):

    D: minimise  L_D^Ra = -E[log D_Ra(x_r, x_f)] - E[log(1 - D_Ra(x_f, x_r))]
    G: minimise  L_G = L_percep + 5e-3 * L_G^Ra + 1e-2 * L1

with D_Ra(a, b) = sigmoid(C(a) - E[C(b)]) (esrgan.losses). Images stay in [0, 1], the generator's
and the discriminator's range. It returns d_loss, g_loss (total), percep, ra, l1 (the weighted
terms), r1 (with `r1_weight` > 0: the unweighted R1 penalty E|grad D(x_r)|^2, of which D minimises
r1_weight / 2 times), and d_real = E[D_Ra(x_r, x_f)], d_fake = E[D_Ra(x_f, x_r)] (probabilities: how sure D is
that real images look more realistic than generated ones, and the reverse).

`PSNRTrainer` is the first stage: the generator alone on L1.

Distribution: every loss is a mean over the replica's batch; it is divided by the number of
replicas before differentiation and the optimizers sum gradients over replicas, so updates follow
the mean over the global batch (the dataset gives every replica an equal batch): the PSNR stage
under MirroredStrategy matches the default strategy to 1e-8. The relativistic expectation E[C(.)]
and the discriminator's batch norm use the replica's batch, as the official code does under
distributed data parallelism. The returned figures are per-replica means, which the caller averages.
"""
import common  # noqa: F401  (quiet TensorFlow import)
import tensorflow as tf

from common.training import AdversarialModel, GeneratorTrainer, num_replicas
from esrgan.losses import L1Loss, RelativisticDiscriminatorLoss

METRICS = ("d_loss", "g_loss", "percep", "ra", "l1", "d_real", "d_fake")


class ESRGAN(AdversarialModel):
    """RRDB generator and VGG-style discriminator, trained with the relativistic average GAN."""

    def __init__(self, generator, discriminator, generator_loss, discriminator_loss=None, r1_weight: float = 0.0,
                 **kwargs):
        """`generator_loss`: esrgan.losses.GeneratorLoss (perceptual, relativistic and L1 parts);
        `discriminator_loss`: RelativisticDiscriminatorLoss (default); `r1_weight`: gamma of the R1
        penalty gamma/2 * E|grad D(x_r)|^2 added to the discriminator's loss (0: off, the paper)."""
        super().__init__(generator, discriminator, r1_weight=r1_weight, **kwargs)
        self.generator_loss = generator_loss
        self.discriminator_loss = discriminator_loss or RelativisticDiscriminatorLoss()

    @tf.autograph.experimental.do_not_convert  # no Python control flow to convert
    def train_step(self, data):
        lr, hr = data[0], tf.cast(data[1], tf.float32)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            sr = self.generator(lr, training=True)
            real_logits, r1 = self.score_real(hr)
            fake_logits = self.discriminator(sr, training=True)
            d_loss = self.discriminator_loss(real_logits, fake_logits)
            parts = self.generator_loss(hr, sr, real_logits, fake_logits)
            n = num_replicas()
            g_scaled, d_scaled = parts["total"] / n, self.with_r1(d_loss, r1) / n
        # Each tape differentiates its own loss for its own network only; both before any update.
        g_vars, d_vars = self.generator.trainable_variables, self.discriminator.trainable_variables
        g_grads, d_grads = g_tape.gradient(g_scaled, g_vars), d_tape.gradient(d_scaled, d_vars)
        self.g_optimizer.apply_gradients(zip(g_grads, g_vars))
        self.d_optimizer.apply_gradients(zip(d_grads, d_vars))
        real = tf.cast(real_logits, tf.float32)
        fake = tf.cast(fake_logits, tf.float32)
        out = {
            "d_loss": d_loss, "g_loss": parts["total"], "percep": parts["perceptual"], "ra": parts["gan"],
            "l1": parts["l1"],
            "d_real": tf.reduce_mean(tf.sigmoid(real - tf.reduce_mean(fake))),
            "d_fake": tf.reduce_mean(tf.sigmoid(fake - tf.reduce_mean(real))),
        }
        return out if r1 is None else {**out, "r1": r1}


class PSNRTrainer(GeneratorTrainer):
    """The PSNR-oriented stage: the generator alone on L1 (RRDB_PSNR); returns {"l1": loss}."""

    def __init__(self, generator, pixel_loss=None, **kwargs):
        super().__init__(generator, pixel_loss or L1Loss(1.0), metric="l1", **kwargs)
