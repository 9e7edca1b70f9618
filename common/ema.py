"""Exponential moving average of a model's weights (Real-ESRGAN's `net_g_ema`, Polyak averaging).

A GAN generator's weights wander step to step as the discriminator pushes it around; their
average keeps the texture the adversarial loss brought and drops much of the step-to-step
noise, which shows as a higher PSNR at the same NIQE. The average is a second copy of the
model, checkpointed with the run, validated and exported in place of the raw weights.
"""
import keras
import tensorflow as tf


class WeightAverage:
    """`average` (a clone of `model`) follows `model`: average <- decay * average + (1 - decay) *
    model after each `update()`.

    `update()` works in replica context (inside `strategy.run`, also inside a `tf.while_loop` of
    several steps), in cross-replica context and without a strategy. Under a strategy every
    replica updates its own copy of the average from its own copy of the weights, which are
    equal on all replicas after each step: no merge_call and no communication, and the copies
    stay equal. Create it in the strategy's scope, like the model.
    """

    def __init__(self, model: keras.Model, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the weight average's decay must be in (0, 1), not {decay}")
        self.model, self.decay = model, float(decay)
        self.average = keras.models.clone_model(model)
        self.copy_from_model()

    def copy_from_model(self):
        """Start the average at the model's current weights (a new run, or one resumed from a
        checkpoint written without an average)."""
        self.average.set_weights(self.model.get_weights())

    def update(self):
        decay = self.decay
        for average, value in zip(self.average.weights, self.model.weights):
            # the keras variables' aggregation is "none": in replica context an assignment
            # updates this replica's copy only
            average.assign(decay * average.value + (1.0 - decay) * tf.cast(value.value, average.dtype))


def checkpoint_has(checkpoint_path: str, name: str) -> bool:
    """Whether a tf.train checkpoint holds an object saved under `name` (e.g. "generator_ema")."""
    return any(key.split("/", 1)[0] == name for key, _ in tf.train.list_variables(checkpoint_path))


class AveragedStep:
    """A Trainer step object: `step`'s training step followed by the average's update; the
    checkpoint holds the average as `name` beside `step`'s own trackables."""

    def __init__(self, step, trackables: dict, average: WeightAverage, name: str = "generator_ema"):
        self._step_fn, self.average = getattr(step, "train_step", step), average
        self.trackables = {**trackables, name: average.average}
        self.name = name
        names = getattr(step, "metric_names", None)
        if names is not None:
            self.metric_names = names

    def train_step(self, batch):
        logs = self._step_fn(batch)
        self.average.update()
        return logs

    def start_average(self, checkpoint_path: str | None):
        """After the Trainer restored `checkpoint_path`: a run resumed from a checkpoint written
        without the average starts it at the restored weights."""
        if checkpoint_path and not checkpoint_has(checkpoint_path, self.name):
            self.average.copy_from_model()
