"""The GAN game of Goodfellow et al. (2014) as a Keras model, shared by the three toy experiments.

The discriminator outputs logits; both players use sigmoid cross-entropy, the generator in its
non-saturating form (maximise log D(G(z)) rather than minimise log(1 - D(G(z)))).

A `GAN` is a step object of `common.training.Trainer` (`trackables`, `metric_names`), which
trains it; `replica_batches` gives the Trainer its data.

Distribution (`tf.distribute`): every replica draws the noise of the whole global batch from its
copy of the GAN's random stream and keeps its own rows, and its data rows are the matching rows
of each global (sub-)batch (`replica_batches`), so a run with R replicas takes the same steps as
one device with the same global batch (up to rounding; batch normalisation must then be
synchronised, e.g. `keras.layers.BatchNormalization(synchronized=True)`; the moving statistics
of unsynchronised BN layers are averaged over the replicas after every step, as
`common.training.Trainer` does).
"""
import common  # noqa: F401  (quiet TensorFlow import)
import keras
import numpy as np
import tensorflow as tf

from common.ema import WeightAverage
from common.training import average_over_replicas, moving_statistics

METRICS = ("d_loss", "g_loss", "d_real", "d_fake")


def _bce(logits, label: float):
    """Mean sigmoid cross-entropy of `logits` against a constant label."""
    labels = tf.fill(tf.shape(logits), tf.constant(label, logits.dtype))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def _seed_states(model) -> list:
    """The state variables of the model's Keras seed generators (e.g. a Dropout layer's)."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


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

    `real_label` < 1: one-sided label smoothing (D's target for real samples; fakes stay 0).
    `mode_seeking` > 0: the generator's loss gains that weight times the mode-seeking term of Mao et
    al. (2019), mean|z1 - z2| / mean|G(z1) - G(z2)| over pairs of its batch's rows: small when
    different noise gives different images, so squeezing a region of noise onto one image costs.
    `ema` > 0: an exponential moving average of the generator's weights with that decay is kept
    (`common.ema.WeightAverage`), updated after each step; `generate(..., ema=True)` samples with it.

    `trackables` (what a Trainer checkpoints): both networks and optimizers, the random stream, the
    instance-noise level, the average and the random state of the networks' layers (Dropout).
    """

    metric_names = METRICS

    def __init__(self, generator, discriminator, latent_dim: int, noise: str = "normal",
                 d_steps: int = 1, instance_noise: float = 0.0, seed: int | None = None,
                 real_label: float = 1.0, mode_seeking: float = 0.0, ema: float = 0.0, **kwargs):
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
        self.real_label = float(real_label)
        self.mode_seeking = float(mode_seeking)
        self.ema = float(ema)
        self._average = None  # the WeightAverage, made by compile
        # a variable, so that a schedule can change it between steps without retracing
        self.instance_noise = tf.Variable(float(instance_noise), trainable=False, dtype=tf.float32,
                                          name="instance_noise")
        # The seed is hashed into a Philox key: Generator.from_seed gives nearly the same stream for
        # 0, 1, 2, ... Under a strategy every replica keeps an identical copy (see `_draw`).
        if seed is None:
            self.rng = tf.random.Generator.from_non_deterministic_state("philox")
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
        self._statistics = moving_statistics(self.generator, self.discriminator)
        self._average = WeightAverage(self.generator, self.ema) if self.ema else None

    @property
    def trackables(self) -> dict:
        ema = {"generator_ema": self._average.average} if self._average else {}
        # Keras keeps the random state of layers such as Dropout out of the networks' checkpoints
        seeds = {f"{name}_seeds": states for name, states in (("generator", _seed_states(self.generator)),
                                                              ("discriminator", _seed_states(self.discriminator)))
                 if states}
        return {"generator": self.generator, "discriminator": self.discriminator, "g_optimizer": self.g_optimizer,
                "d_optimizer": self.d_optimizer, "rng": self.rng, "instance_noise": self.instance_noise, **ema,
                **seeds}

    def _draw(self, kind: str, n, rest=(), blocks: int = 1):
        """This replica's rows of one draw from the GAN's random stream ("normal" or "uniform" in
        [-1, 1)), shape (blocks * n, *rest).

        The draw covers the whole global batch: `blocks` blocks of n * replicas rows (e.g. real and
        fake samples side by side), from which this replica keeps its n rows of each block. Every
        replica advances its copy of the stream alike, so the numbers do not depend on how the
        batch is split over devices and workers; with one replica this is exactly
        `self.rng.normal/uniform((blocks * n, *rest))`.
        """
        context = tf.distribute.get_replica_context()
        replicas = 1 if context is None else context.num_replicas_in_sync
        rest = tf.cast(tf.reshape(rest, [-1]), tf.int32)
        n = tf.cast(n, tf.int32)
        shape = tf.concat([[blocks * replicas * n], rest], 0)
        # Generator.normal/uniform without the replica-dependent key: skip() advances the
        # replica's own copy of the state (all copies stay equal) and returns the state before
        state = self.rng.skip(tf.reduce_prod(shape))
        counter = tf.bitcast(state[:2], tf.uint64)
        key = tf.bitcast(state[2:3], tf.uint64)
        if kind == "uniform":
            values = tf.raw_ops.StatelessRandomUniformV2(shape=shape, key=key, counter=counter,
                                                         alg=self.rng.algorithm, dtype=tf.float32)
            values = values * 2.0 + -1.0  # as Generator.uniform(minval=-1, maxval=1)
        else:
            values = tf.raw_ops.StatelessRandomNormalV2(shape=shape, key=key, counter=counter,
                                                        alg=self.rng.algorithm, dtype=tf.float32)
        if replicas == 1:
            return values
        replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
        starts = [(b * replicas + replica) * n for b in range(blocks)]
        return tf.concat([values[start:start + n] for start in starts], 0)

    def sample_noise(self, n):
        """(n, latent_dim) noise; in replica context this replica's rows of a global draw."""
        return self._draw(self.noise, n, [self.latent_dim])

    def discriminate(self, x, training=True, blocks: int = 1):
        """D's logits; with instance noise (during training) the input is perturbed first.
        `blocks`: how many batches x holds side by side (e.g. real and fake), for `_draw`."""
        if training:
            n = tf.shape(x)[0] // blocks
            eps = self._draw("normal", n, tf.shape(x)[1:], blocks)
            x = x + tf.cast(self.instance_noise, x.dtype) * tf.cast(eps, x.dtype)
        return self.discriminator(x, training=training)

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def generate(self, n: int | None = None, batch_size: int = 10_000, training: bool = False, ema: bool = False,
                 z=None) -> np.ndarray:
        """`n` generated samples as a numpy array (inference mode unless `training`), from fresh noise or
        from the noise `z` given; `ema`: with the averaged generator weights (see `ema`)."""
        if ema and not self._average:
            raise ValueError("this GAN keeps no average of the generator's weights (ema=0)")
        generator = self._average.average if ema else self.generator
        parts = []
        n = len(z) if z is not None else n
        for start in range(0, n, batch_size):
            part = self.sample_noise(min(batch_size, n - start)) if z is None else z[start:start + batch_size]
            parts.append(keras.ops.convert_to_numpy(generator(part, training=training)))
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
            logits = self.discriminate(tf.concat([real, tf.cast(fake, real.dtype)], axis=0), blocks=2)
            real_logits, fake_logits = logits[:n], logits[n:]
            loss = _bce(real_logits, self.real_label) + _bce(fake_logits, 0.0)
            scaled = self._scale(loss, self.discriminator)
        weights = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(scaled, weights), weights))
        return loss, tf.reduce_mean(tf.sigmoid(real_logits)), tf.reduce_mean(tf.sigmoid(fake_logits))

    def generator_step(self, n):
        z = self.sample_noise(n)
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            fake_logits = self.discriminate(fake)
            loss = _bce(fake_logits, 1.0)  # non-saturating: -log D(G(z))
            if self.mode_seeking:
                loss = loss + self.mode_seeking * self._mode_seeking_term(z, fake)
            scaled = self._scale(loss, self.generator)
        weights = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(scaled, weights), weights))
        return loss

    @staticmethod
    def _mode_seeking_term(z, fake):
        """mean|z1 - z2| / mean|G(z1) - G(z2)| over the pairs of rows (0, 1), (2, 3), ... (Mao et al.
        2019). Under a strategy the means are those of the global batch (the pairs stay within a
        replica; the sums are all-reduced), so R replicas take the steps of one device."""
        rows = tf.shape(z)[0] // 2 * 2
        z_sum = tf.reduce_sum(tf.abs(z[0:rows:2] - z[1:rows:2]))
        image_sum = tf.cast(tf.reduce_sum(tf.abs(fake[0:rows:2] - fake[1:rows:2])), z_sum.dtype)
        image_size = tf.cast(tf.reduce_prod(tf.shape(fake)[1:]), z_sum.dtype)
        z_size = tf.cast(tf.reduce_prod(tf.shape(z)[1:]), z_sum.dtype)
        pairs = tf.cast(rows // 2, z_sum.dtype)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            z_sum, image_sum, pairs = context.all_reduce(tf.distribute.ReduceOp.SUM, [z_sum, image_sum, pairs])
        image_gap = image_sum / (pairs * image_size)
        return z_sum / (pairs * z_size) / (image_gap + 1e-5)

    def train_step(self, data):
        real = data[0] if isinstance(data, (tuple, list)) else data
        for part in tf.split(real, self.d_steps, axis=0):
            d_loss, d_real, d_fake = self.discriminator_step(part)
        g_loss = self.generator_step(tf.shape(part)[0])
        average_over_replicas(getattr(self, "_statistics", []))
        if self._average:
            self._average.update()
        return {"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake}


def replica_batches(make_dataset, global_batch: int, parts: int = 1):
    """The Trainer's `make_dataset(start_step, input_context)` for a GAN: each input pipeline
    (one per worker) draws its share of every global batch with `make_dataset(rows, pipeline_id,
    start)` (an endless dataset of batches of `rows` from batch number `start` on; seed it with
    the pipeline id) and deals it out to its replicas.

    A batch holds `parts` sub-batches one after the other (the `d_steps` discriminator batches of
    `GAN.train_step`); a replica gets its rows of each, so that on one worker the replicas
    together train on exactly the batches the default strategy would.
    """

    def pipeline(start_step, context):
        replicas = context.num_replicas_in_sync
        if global_batch % (replicas * parts):
            raise ValueError(f"the global batch ({global_batch // parts} x {parts}) must divide evenly over "
                             f"{replicas} replicas")
        local = replicas // context.num_input_pipelines
        per_replica = context.get_per_replica_batch_size(global_batch)
        dataset = make_dataset(per_replica * local, context.input_pipeline_id, start_step)
        if local == 1:
            return dataset

        def deal(batch):  # (parts, replicas, rows) -> (replicas, parts, rows): one batch per replica
            rest = tf.shape(batch)[1:]
            split = tf.reshape(batch, tf.concat([[parts, local, per_replica // parts], rest], 0))
            order = tf.concat([[1, 0], tf.range(2, tf.rank(split))], 0)
            return tf.data.Dataset.from_tensor_slices(
                tf.reshape(tf.transpose(split, order), tf.concat([[local, per_replica], rest], 0)))

        return dataset.flat_map(deal)

    return pipeline
