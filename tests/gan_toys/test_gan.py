import numpy as np
import pytest

import common  # noqa: F401
import keras
import tensorflow as tf

from gan_toys import models
from gan_toys.gan import GAN, METRICS, train


def _toy_gan(d_steps=1, noise="normal", instance_noise=0.0):
    keras.utils.set_random_seed(0)
    gan = GAN(models.linear_generator(), models.mlp_discriminator(units=8), latent_dim=1, noise=noise,
              d_steps=d_steps, instance_noise=instance_noise, seed=0)
    gan.compile(keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2))
    return gan


def _weights(model):
    return [w.copy() for w in model.get_weights()]


def test_train_step_updates_both_networks_and_returns_named_losses():
    gan = _toy_gan()
    g0, d0 = _weights(gan.generator), _weights(gan.discriminator)
    out = gan.train_step(tf.random.normal((16, 1), 2.5, 3.0))
    assert set(out) == set(METRICS)
    for key in ("d_real", "d_fake"):
        assert 0.0 < float(out[key]) < 1.0
    assert float(out["d_loss"]) > 0 and float(out["g_loss"]) > 0
    for before, model in ((g0, gan.generator), (d0, gan.discriminator)):
        assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("k", [1, 3])
def test_k_discriminator_steps_per_generator_step(k):
    gan = _toy_gan(d_steps=k)
    gan.train_step(tf.random.normal((4 * k, 1)))
    assert int(gan.d_optimizer.iterations) == k
    assert int(gan.g_optimizer.iterations) == 1


def test_losses_are_sigmoid_cross_entropy_and_non_saturating():
    gan = _toy_gan()
    gan.compile(keras.optimizers.SGD(0.0), keras.optimizers.SGD(0.0))  # figures without updates
    affine = gan.generator.get_layer("affine")
    affine.set_weights([np.zeros((1, 1), np.float32), np.array([1.5], np.float32)])  # G(z) = 1.5
    real = tf.constant([[-2.0], [0.5], [4.0], [7.0]])
    out = gan.train_step(real)
    p_real = tf.sigmoid(gan.discriminator(real)).numpy().ravel()
    p_fake = float(tf.sigmoid(gan.discriminator(tf.constant([[1.5]])))[0, 0])
    assert np.isclose(float(out["d_real"]), p_real.mean(), atol=1e-6)
    assert np.isclose(float(out["d_fake"]), p_fake, atol=1e-6)
    assert np.isclose(float(out["d_loss"]), -np.log(p_real).mean() - np.log(1 - p_fake), atol=1e-5)
    assert np.isclose(float(out["g_loss"]), -np.log(p_fake), atol=1e-5)  # not log(1 - D)


def test_uniform_noise_in_range():
    gan = _toy_gan(noise="uniform")
    z = gan.sample_noise(1000).numpy()
    assert z.min() >= -1 and z.max() <= 1 and z.std() > 0.5


def test_train_loop_records_every_step_and_calls_stops():
    gan = _toy_gan(instance_noise=0.1)
    data = tf.data.Dataset.from_tensors(tf.ones((8, 1))).repeat()
    seen = []
    history = train(gan, data, 25, stops=[5, 20], on_stop=seen.append, chunk=7)
    assert seen == [5, 20, 25]
    assert all(len(history[k]) == 25 for k in METRICS)
    assert int(gan.g_optimizer.iterations) == 25


def test_mirrored_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        gan = _toy_gan()
    data = tf.data.Dataset.from_tensors(tf.ones((8, 1))).repeat()
    history = train(gan, data, 3, strategy=strategy)
    assert len(history["d_loss"]) == 3 and np.isfinite(history["g_loss"]).all()


def test_seeds_give_independent_noise_streams():
    draws = [GAN(models.linear_generator(), models.mlp_discriminator(units=4), 1, seed=s)
             .sample_noise(2000).numpy().ravel() for s in range(3)]
    assert abs(np.corrcoef(draws)[0, 1]) < 0.1 and abs(np.corrcoef(draws)[1, 2]) < 0.1
    assert not np.allclose(np.sort(draws[0])[:10], np.sort(draws[1])[:10], atol=1e-3)


def test_keras_fit_uses_the_same_train_step():
    gan = _toy_gan(d_steps=2)
    data = tf.data.Dataset.from_tensors(tf.random.normal((8, 1), 2.5, 3.25)).repeat()
    history = gan.fit(data, steps_per_epoch=3, epochs=1, verbose=0, shuffle=False).history
    assert set(METRICS) <= set(history)
    assert int(gan.d_optimizer.iterations) == 6 and int(gan.g_optimizer.iterations) == 3


def _zero_discriminator(gan):
    """D(x) = 0.5 for every x: its losses are log 2 each."""
    gan.discriminator.set_weights([np.zeros_like(w) for w in gan.discriminator.get_weights()])


def test_one_sided_label_smoothing_targets_real_images_only():
    gan = GAN(models.linear_generator(), models.mlp_discriminator(units=8), 1, seed=0, real_label=0.9)
    gan.compile(keras.optimizers.SGD(0.0), keras.optimizers.SGD(0.0))
    gan.generator.get_layer("affine").set_weights([np.zeros((1, 1), np.float32), np.array([1.5], np.float32)])
    real = tf.constant([[-2.0], [0.5], [4.0], [7.0]])
    out = gan.train_step(real)
    p_real = tf.sigmoid(gan.discriminator(real)).numpy().ravel()
    p_fake = float(tf.sigmoid(gan.discriminator(tf.constant([[1.5]])))[0, 0])
    smoothed = -(0.9 * np.log(p_real) + 0.1 * np.log(1 - p_real)).mean()
    assert np.isclose(float(out["d_loss"]), smoothed - np.log(1 - p_fake), atol=1e-5)  # fakes' target: 0
    assert np.isclose(float(out["g_loss"]), -np.log(p_fake), atol=1e-5)  # G's target: 1


def test_mode_seeking_term_of_a_linear_generator_is_one_over_its_slope():
    # G(z) = 2z + 1: |G(z1) - G(z2)| = 2 |z1 - z2|, so the term is 1/2; D flat: -log D = log 2
    gan = GAN(models.linear_generator(), models.mlp_discriminator(units=4), 1, seed=0, mode_seeking=0.3)
    gan.compile(keras.optimizers.SGD(0.0), keras.optimizers.SGD(0.0))
    gan.generator.get_layer("affine").set_weights([np.full((1, 1), 2.0, np.float32), np.ones(1, np.float32)])
    _zero_discriminator(gan)
    out = gan.train_step(tf.zeros((64, 1)))
    assert np.isclose(float(out["g_loss"]), np.log(2) + 0.3 * 0.5, atol=1e-4)
    z = tf.random.uniform((64, 1), -1, 1)
    assert np.isclose(float(GAN._mode_seeking_term(z, 2 * z + 1)), 0.5, atol=1e-4)
    assert float(GAN._mode_seeking_term(z, 0 * z)) > 1e3  # every z on one sample: a large cost


def test_ema_of_generator_weights_and_sampling_with_it():
    gan = GAN(models.linear_generator(), models.mlp_discriminator(units=8), 1, seed=0, ema=0.5)
    gan.compile(keras.optimizers.Adam(0.1), keras.optimizers.Adam(0.1))
    affine = gan.generator.get_layer("affine")
    expected = [w.copy() for w in affine.get_weights()]  # the average starts at the first weights
    for _ in range(3):
        gan.train_step(tf.random.normal((8, 1), 2.5, 3.0))
        expected = [0.5 * e + 0.5 * w for e, w in zip(expected, affine.get_weights())]
    current = [w.copy() for w in affine.get_weights()]
    assert not np.allclose(current[1], expected[1])  # the average lags behind
    z = np.linspace(-1, 1, 5, dtype=np.float32)[:, None]
    sampled = gan.generate(z=z, ema=True)
    np.testing.assert_allclose(sampled, z * expected[0][0, 0] + expected[1][0], rtol=1e-5, atol=1e-6)
    for now, before in zip(affine.get_weights(), current):  # the last weights are back
        np.testing.assert_array_equal(now, before)
    np.testing.assert_allclose(gan.generate(z=z), z * current[0][0, 0] + current[1][0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        _toy_gan().generate(4, ema=True)
