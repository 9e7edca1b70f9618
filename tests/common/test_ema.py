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
