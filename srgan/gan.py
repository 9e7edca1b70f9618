"""SRGAN's adversarial training (Ledig et al., 2017) as a Keras model.

One `train_step((lr, hr))` makes k = `d_steps` discriminator updates, each on its own part of
the batch, then one generator update on the last part, reusing that part's generator forward
pass but scoring it with the just-updated discriminator (Goodfellow et al.'s alternating scheme):

    D: minimise  -log D(HR) - log(1 - D(G(LR)))
    G: minimise  content(HR, G(LR)) + 1e-3 * -log D(G(LR)) [+ TV(G(LR))]

Images are compared in the generator's output range [-1, 1] (HR is mapped there). The step
returns d_loss, g_loss (the perceptual loss), content, adversarial, d_real = mean D(HR) and
d_fake = mean D(G(LR)) (probabilities, from the last discriminator update), and with `r1_weight` > 0
r1, the unweighted R1 penalty E|grad D(HR)|^2 (D minimises r1_weight / 2 times it; Mescheder et al.).

Distribution: the loss objects give means over a replica's batch; each is divided by the number
of replicas before differentiation, and the optimizers sum gradients over replicas, so updates
follow the mean over the global batch (replicas get equal batches: the dataset drops remainders).
The returned figures are per-replica means, which the caller averages over replicas.
`train_step` runs inside `strategy.run` both under `Model.fit` and under common.training.Trainer.
"""
import common  # noqa: F401  (quiet TensorFlow import)
import tensorflow as tf

from common.training import AdversarialModel, GeneratorTrainer, num_replicas

METRICS = ("d_loss", "g_loss", "content", "adversarial", "d_real", "d_fake")


def to_generator_range(hr):
    """HR pixels [0, 1] -> the generator's output range [-1, 1]."""
    return tf.cast(hr, tf.float32) * 2.0 - 1.0


class SRGAN(AdversarialModel):
    """Generator (SRResNet) and discriminator trained by alternating Adam steps."""

    def __init__(self, generator, discriminator, content_loss, adversarial_loss, discriminator_loss,
                 tv_loss=None, d_steps: int = 1, r1_weight: float = 0.0, **kwargs):
        super().__init__(generator, discriminator, r1_weight=r1_weight, **kwargs)
        if d_steps < 1:
            raise ValueError("d_steps must be at least 1")
        self.content_loss = content_loss
        self.adversarial_loss = adversarial_loss
        self.discriminator_loss = discriminator_loss
        self.tv_loss = tv_loss
        self.d_steps = int(d_steps)

    def discriminator_step(self, hr, sr):
        """One discriminator update on real `hr` and generated `sr` (both in [-1, 1]): its loss (without
        the R1 term), d_real, d_fake and the R1 penalty (None when off)."""
        sr = tf.stop_gradient(sr)
        with tf.GradientTape() as tape:
            real_logits, r1 = self.score_real(hr)
            fake_logits = self.discriminator(sr, training=True)
            loss = self.discriminator_loss(real_logits, fake_logits)
            scaled = self.with_r1(loss, r1) / num_replicas()
        weights = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(scaled, weights), weights))
        d_real = tf.reduce_mean(tf.sigmoid(tf.cast(real_logits, tf.float32)))
        d_fake = tf.reduce_mean(tf.sigmoid(tf.cast(fake_logits, tf.float32)))
        return loss, d_real, d_fake, r1

    @tf.autograph.experimental.do_not_convert  # plain Python control flow: tracing is faster
    def train_step(self, data):
        lr, hr = data[0], data[1]
        lr_parts = tf.split(lr, self.d_steps, axis=0)
        hr_parts = tf.split(to_generator_range(hr), self.d_steps, axis=0)
        for lr_part, hr_part in zip(lr_parts[:-1], hr_parts[:-1]):
            self.discriminator_step(hr_part, self.generator(lr_part, training=True))

        lr, hr = lr_parts[-1], hr_parts[-1]
        with tf.GradientTape() as tape:
            sr = self.generator(lr, training=True)
            with tape.stop_recording():
                d_loss, d_real, d_fake, r1 = self.discriminator_step(hr, sr)
            fake_logits = self.discriminator(sr, training=True)
            content = self.content_loss(hr, sr)
            adversarial = self.adversarial_loss(fake_logits)
            g_loss = content + adversarial
            if self.tv_loss is not None:
                g_loss = g_loss + self.tv_loss(sr)
            scaled = g_loss / num_replicas()
        weights = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(scaled, weights), weights))
        out = {"d_loss": d_loss, "g_loss": g_loss, "content": content, "adversarial": adversarial,
               "d_real": d_real, "d_fake": d_fake}
        return out if r1 is None else {**out, "r1": r1}


class SRResNetTrainer(GeneratorTrainer):
    """The pretraining stage: the generator alone on a content loss (SRResNet-MSE / -VGG22),
    HR compared in the generator's range [-1, 1]; returns {"content": loss}."""

    def __init__(self, generator, content_loss, **kwargs):
        super().__init__(generator, content_loss, metric="content", to_output_range=to_generator_range, **kwargs)
