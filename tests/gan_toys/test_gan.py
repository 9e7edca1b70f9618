import numpy as np
import pytest

import common  # noqa: F401
import keras
import tensorflow as tf

from common.training import Trainer
from gan_toys import data, models
from gan_toys.gan import GAN, METRICS, replica_batches


def _toy_gan(d_steps=1, noise="normal", instance_noise=0.0, seed=0, ema=0.0):
    keras.utils.set_random_seed(seed)
    gan = GAN(models.linear_generator(), models.mlp_discriminator(units=8), latent_dim=1, noise=noise,
              d_steps=d_steps, instance_noise=instance_noise, seed=seed, ema=ema)
    gan.compile(keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2))
    return gan


def _gaussian_batches(batch=8, d_steps=1):
    """The Trainer's make_dataset: endless N(2.5, 3^2) batches of batch x d_steps rows."""
    return replica_batches(lambda rows, seed, start: data.gaussian_dataset(rows, 2.5, 3.0, seed=seed, start=start),
                           batch * d_steps, d_steps)


def _history(trainer) -> dict:
    return {k: np.array([record[k] for record in trainer.history], np.float32) for k in METRICS}


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


def _run(steps_per_call, steps=25, marks=(5, 20, 25), **trainer_args):
    """A GAN trained by the Trainer, with a hook that lowers the instance noise at `marks`;
    returns (gan, trainer, [(step, instance noise seen by the hook)])."""
    gan = _toy_gan(instance_noise=0.3, ema=0.9)
    seen = []

    def hook(step):
        seen.append((step, float(gan.instance_noise.numpy())))
        gan.instance_noise.assign(0.3 - 0.01 * step)

    trainer = Trainer(trainer_args.pop("run_dir", None), gan, _gaussian_batches(), total_steps=steps, log_every=1,
                      steps_per_call=steps_per_call, progress=False, hooks=[(marks, hook)], **trainer_args)
    trainer.fit()
    return gan, trainer, seen


def test_the_trainer_takes_a_gan_s_steps_with_per_step_history_and_hooks():
    gan, trainer, seen = _run(steps_per_call=7)
    assert [step for step, _ in seen] == [5, 20, 25]
    assert np.isclose(seen[1][1], 0.25) and np.isclose(seen[2][1], 0.1)  # the hooks' changes took effect
    history = _history(trainer)
    assert all(len(history[k]) == 25 for k in METRICS) and int(gan.g_optimizer.iterations) == 25
    # the same steps one graph call each: the same numbers, hooks after the same steps
    one, one_trainer, one_seen = _run(steps_per_call=1)
    assert one_seen == seen
    for k in METRICS:
        np.testing.assert_array_equal(_history(one_trainer)[k], history[k])
    for a, b in zip(one.generator.get_weights() + one.discriminator.get_weights(),
                    gan.generator.get_weights() + gan.discriminator.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_resumed_gan_run_continues_bit_exactly(tmp_path):
    """A run rebuilt from its checkpoint at step 6 (as after kill -9: new objects, other weights and
    seed) takes the uninterrupted run's remaining steps: networks, optimizers, random stream,
    instance noise (changed by a hook before the checkpoint) and the weight average are restored."""
    whole, whole_trainer, _ = _run(steps_per_call=4, steps=10, marks=(4, 8), run_dir=tmp_path / "whole",
                                   checkpoint_every=6)
    _run(steps_per_call=4, steps=6, marks=(4, 8), run_dir=tmp_path / "killed", checkpoint_every=6)
    from tests.common.test_training import checkpoint_names

    assert checkpoint_names(tmp_path / "killed") == {
        "step", "save_counter", "generator", "discriminator", "g_optimizer", "d_optimizer", "rng", "instance_noise",
        "generator_ema"}

    again = _toy_gan(instance_noise=0.3, ema=0.9, seed=1)
    trainer = Trainer(tmp_path / "killed", again, _gaussian_batches(), total_steps=10, log_every=1,
                      steps_per_call=4, progress=False, checkpoint_every=6,
                      hooks=[((4, 8), lambda step: again.instance_noise.assign(0.3 - 0.01 * step))])
    assert trainer.resumed_from == 6 and np.isclose(float(again.instance_noise.numpy()), 0.26)
    trainer.fit()
    for k in METRICS:
        np.testing.assert_array_equal(_history(trainer)[k], _history(whole_trainer)[k][6:])
    for a, b in zip(_state(again), _state(whole), strict=True):
        np.testing.assert_array_equal(a, b)


def _state(gan) -> list:
    """Everything a GAN's training changes, as arrays."""
    models_ = (gan.generator, gan.discriminator, gan.trackables["generator_ema"])
    return ([w for model in models_ for w in model.get_weights()]
            + [np.asarray(v) for opt in (gan.g_optimizer, gan.d_optimizer) for v in opt.variables]
            + [gan.rng.state.numpy(), gan.instance_noise.numpy()])


def test_mirrored_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        gan = _toy_gan(ema=0.5)
    trainer = Trainer(None, gan, _gaussian_batches(), total_steps=3, strategy=strategy, log_every=1,
                      steps_per_call=3, progress=False)
    trainer.fit()
    history = _history(trainer)
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
