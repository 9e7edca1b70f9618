"""The GAN game of Goodfellow et al. (2014) as a Keras model, shared by the three toy experiments.

The discriminator outputs logits; both players use sigmoid cross-entropy, the generator in its
non-saturating form (maximise log D(G(z)) rather than minimise log(1 - D(G(z)))).
"""
import common  # noqa: F401  (quiet TensorFlow import)
import keras
import numpy as np
import tensorflow as tf

METRICS = ("d_loss", "g_loss", "d_real", "d_fake")


def _bce(logits, label: float):
    """Mean sigmoid cross-entropy of `logits` against a constant label."""
    labels = tf.fill(tf.shape(logits), tf.constant(label, logits.dtype))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


class GAN(keras.Model):
    """Generator and discriminator trained by alternating gradient steps.

    Each `train_step(real)` splits the real batch into `d_steps` equal parts, takes one
    discriminator step on each (with fresh noise), then one generator step, and returns the
    named figures of the last discriminator step and the generator step:
    d_loss, g_loss, d_real = mean D(real), d_fake = mean D(G(z)). Losses of the networks'
    regularisers (e.g. an L2 weight penalty) are added to their player's loss.

    `instance_noise` > 0 adds Gaussian noise of that standard deviation to every input of the
    discriminator, real and generated alike (Sonderby et al. 2016): the distributions then
    overlap, so D cannot separate them perfectly, while p_g = p_data remains the equilibrium.
    """

    def __init__(self, generator, discriminator, latent_dim: int, noise: str = "normal",
                 d_steps: int = 1, instance_noise: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if noise not in ("normal", "uniform"):
            raise ValueError(f"noise must be 'normal' or 'uniform', not {noise!r}")
        if d_steps < 1:
            raise ValueError("d_steps must be at least 1")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.noise = noise
        self.d_steps = int(d_steps)
        # a variable, so that a schedule can change it between steps without retracing
        self.instance_noise = tf.Variable(float(instance_noise), trainable=False, dtype=tf.float32,
                                          name="instance_noise")
        # distribution-aware: under a strategy scope each replica draws its own stream. The seed is
        # hashed into a Philox key: Generator.from_seed gives nearly the same stream for 0, 1, 2, ...
        if seed is None:
            self.rng = tf.random.Generator.from_non_deterministic_state()
        else:
            key = int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0] >> 1)
            self.rng = tf.random.Generator.from_key_counter(key, [0, 0], "philox")

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        # create the slot variables now (inside the caller's strategy scope), not in a tf.function
        d_optimizer.build(self.discriminator.trainable_variables)
        g_optimizer.build(self.generator.trainable_variables)

    def sample_noise(self, n):
        shape = tf.stack([n, self.latent_dim])
        if self.noise == "uniform":
            return self.rng.uniform(shape, -1.0, 1.0)
        return self.rng.normal(shape)

    def discriminate(self, x, training=True):
        """D's logits; with instance noise (during training) the input is perturbed first."""
        if training:
            x = x + tf.cast(self.instance_noise, x.dtype) * self.rng.normal(tf.shape(x), dtype=x.dtype)
        return self.discriminator(x, training=training)

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def generate(self, n: int, batch_size: int = 10_000, training: bool = False) -> np.ndarray:
        """`n` generated samples as a numpy array (inference mode unless `training`)."""
        parts = []
        for start in range(0, n, batch_size):
            z = self.sample_noise(min(batch_size, n - start))
            parts.append(keras.ops.convert_to_numpy(self.generator(z, training=training)))
        return np.concatenate(parts)

    @staticmethod
    def _scale(loss, model):
        """Per-replica share of the loss (optimizers sum gradients over replicas) + regularisers."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if model.losses:
            loss = loss + tf.add_n(model.losses)
        return loss / replicas

    def discriminator_step(self, real):
        n = tf.shape(real)[0]
        z = self.sample_noise(n)
        fake = self.generator(z, training=True)
        with tf.GradientTape() as tape:
            # one call on real and fake together (these discriminators keep no batch statistics)
            logits = self.discriminate(tf.concat([real, tf.cast(fake, real.dtype)], axis=0))
            real_logits, fake_logits = logits[:n], logits[n:]
            loss = _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)
            scaled = self._scale(loss, self.discriminator)
        weights = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(scaled, weights), weights))
        return loss, tf.reduce_mean(tf.sigmoid(real_logits)), tf.reduce_mean(tf.sigmoid(fake_logits))

    def generator_step(self, n):
        z = self.sample_noise(n)
        with tf.GradientTape() as tape:
            fake_logits = self.discriminate(self.generator(z, training=True))
            loss = _bce(fake_logits, 1.0)  # non-saturating: -log D(G(z))
            scaled = self._scale(loss, self.generator)
        weights = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(scaled, weights), weights))
        return loss

    def train_step(self, data):
        real = data[0] if isinstance(data, (tuple, list)) else data
        for part in tf.split(real, self.d_steps, axis=0):
            d_loss, d_real, d_fake = self.discriminator_step(part)
        g_loss = self.generator_step(tf.shape(part)[0])
        return {"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake}


def make_step_runner(gan: GAN, strategy=None):
    """A tf.function `run(iterator, n)` taking n training steps; returns {metric: array of n}.

    Looping inside one graph avoids Python overhead per step, which dominates for these tiny
    networks. Figures are averaged over replicas.
    """
    strategy = strategy or tf.distribute.get_strategy()

    @tf.function
    def run(iterator, n):
        arrays = tuple(tf.TensorArray(tf.float32, size=n) for _ in METRICS)
        for i in tf.range(n):
            out = strategy.run(gan.train_step, args=(next(iterator),))
            arrays = tuple(
                a.write(i, tf.cast(strategy.reduce("MEAN", out[k], axis=None), tf.float32))
                for a, k in zip(arrays, METRICS))
        return {k: a.stack() for k, a in zip(METRICS, arrays)}

    return run


def train(gan: GAN, dataset: tf.data.Dataset, steps: int, stops=(), on_stop=None, strategy=None,
          chunk: int = 500) -> dict:
    """Train for `steps` steps on batches from `dataset` (one batch = one train_step's input).

    `on_stop(step)` is called after each step listed in `stops` (and after the last step).
    Returns the per-step history {metric: np.ndarray of length steps}.
    """
    strategy = strategy or tf.distribute.get_strategy()
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    run = make_step_runner(gan, strategy)
    marks = sorted({s for s in stops if 0 < s < steps} | {steps})
    history = {k: [] for k in METRICS}
    done = 0
    for mark in marks:
        while done < mark:
            n = min(chunk, mark - done)
            out = run(iterator, tf.constant(n))
            for k in METRICS:
                history[k].append(out[k].numpy())
            done += n
        if on_stop is not None:
            on_stop(done)
    return {k: np.concatenate(v) if v else np.zeros(0, np.float32) for k, v in history.items()}
