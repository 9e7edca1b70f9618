import keras
import numpy as np
import pytest
import tensorflow as tf

from common.ema import WeightAverage, checkpoint_has


def tiny():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])


def shifted(model, delta):
    model.set_weights([w + delta for w in model.get_weights()])


def test_average_follows_the_model_at_its_decay():
    keras.utils.set_random_seed(0)
    model = tiny()
    ema = WeightAverage(model, 0.9)
    start = [w.copy() for w in model.get_weights()]
    shifted(model, 1.0)

    @tf.function
    def step():
        ema.update()

    step()
    step()
    # two updates toward weights 1.0 above the start: 1 - 0.9**2 of the way
    for a, s in zip(ema.average.get_weights(), start):
        np.testing.assert_allclose(a, s + 0.19, rtol=0, atol=1e-6)
    for m, s in zip(model.get_weights(), start):
        np.testing.assert_allclose(m, s + 1.0, atol=1e-6)  # the model itself untouched


def test_update_under_a_mirrored_strategy_in_replica_context():
    cpus = tf.config.list_logical_devices("CPU")
    strategy = tf.distribute.MirroredStrategy([d.name for d in cpus[:1]])
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = tiny()
        ema = WeightAverage(model, 0.5)
    start = [w.copy() for w in model.get_weights()]
    shifted(model, 2.0)

    @tf.function
    def step():
        strategy.run(ema.update)

    step()
    for a, s in zip(ema.average.get_weights(), start):
        np.testing.assert_allclose(a, s + 1.0, atol=1e-6)


def test_checkpoint_round_trip_and_detection(tmp_path):
    keras.utils.set_random_seed(0)
    model = tiny()
    ema = WeightAverage(model, 0.99)
    shifted(model, 1.0)
    ema.update()
    saved = [w.copy() for w in ema.average.get_weights()]
    with_ema = tf.train.Checkpoint(generator=model, generator_ema=ema.average).write(str(tmp_path / "a"))
    without = tf.train.Checkpoint(generator=model).write(str(tmp_path / "b"))
    assert checkpoint_has(with_ema, "generator_ema") and not checkpoint_has(without, "generator_ema")

    model2 = tiny()
    ema2 = WeightAverage(model2, 0.99)
    tf.train.Checkpoint(generator=model2, generator_ema=ema2.average).restore(with_ema).expect_partial()
    for a, b in zip(ema2.average.get_weights(), saved):
        np.testing.assert_array_equal(a, b)


def test_decay_must_be_a_fraction():
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(tiny(), 1.0)


def test_averaged_step_inside_a_multi_step_graph_loop_under_a_mirrored_strategy():
    """The update in replica context inside the Trainer's tf.while loop of several steps gives the
    average of one step at a time: decay-weighted over the weights after each step."""
    from common.ema import AveragedStep
    from common.training import Trainer

    def run(steps_per_call, strategy, record: bool):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = tiny()
            optimizer = keras.optimizers.SGD(0.1)
            optimizer.build(model.trainable_variables)
            average = WeightAverage(model, 0.5)
        seen = [model.get_weights()]

        def train_step(batch):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(batch)))
            optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
            return {"loss": loss}

        step = AveragedStep(train_step, {"model": model, "optimizer": optimizer}, average)
        hooks = [(range(1, 6), lambda s: seen.append(model.get_weights()))] if record else []
        Trainer(None, step, lambda start, ctx: tf.data.Dataset.from_tensors(tf.ones((4, 3))).repeat(), total_steps=5,
                strategy=strategy, steps_per_call=steps_per_call, progress=False, hooks=hooks).fit()
        return average.average.get_weights(), seen

    mirrored = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")[:1]])
    in_loop, _ = run(5, mirrored, record=False)  # one call of five steps
    one_by_one, weights = run(1, tf.distribute.get_strategy(), record=True)
    expected = weights[0]  # the average starts at the model's first weights
    for step_weights in weights[1:]:
        expected = [0.5 * e + 0.5 * w for e, w in zip(expected, step_weights)]
    for a, b, e in zip(in_loop, one_by_one, expected, strict=True):
        np.testing.assert_allclose(b, e, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(expected[0], weights[-1][0])  # the average lags behind the model


def test_a_run_checkpointed_with_the_average_as_a_model_clone_resumes_with_it(tmp_path):
    """The GAN stages' checkpoint layout (the average saved as "generator_ema", a clone of the
    generator) restores into an AveragedStep's Trainer."""
    from common.ema import AveragedStep
    from common.training import Trainer

    keras.utils.set_random_seed(0)
    model, average_model = tiny(), tiny()
    shifted(average_model, 3.0)
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build(model.trainable_variables)
    old = tf.train.Checkpoint(step=tf.Variable(2, dtype=tf.int64), generator=model, g_optimizer=optimizer,
                              generator_ema=average_model)
    tf.train.CheckpointManager(old, str(tmp_path / "checkpoints"), max_to_keep=2).save(checkpoint_number=2)

    keras.utils.set_random_seed(1)
    generator = tiny()
    g_optimizer = keras.optimizers.SGD(0.1)
    g_optimizer.build(generator.trainable_variables)
    step = AveragedStep(lambda batch: {"loss": tf.constant(0.0)}, {"generator": generator, "g_optimizer": g_optimizer},
                        WeightAverage(generator, 0.9))
    trainer = Trainer(tmp_path, step, None, total_steps=2, progress=False)
    step.start_average(tf.train.latest_checkpoint(str(tmp_path / "checkpoints")))
    assert trainer.resumed_from == 2
    for a, b in zip(step.average.average.get_weights(), average_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(generator.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
