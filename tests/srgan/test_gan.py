"""SRGAN's alternating GAN step on tiny networks."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from srgan.gan import METRICS, SRGAN, SRResNetTrainer
from srgan.losses import AdversarialLoss, DiscriminatorLoss, PixelMSE, TotalVariation, content_loss
from srgan.models import discriminator, srresnet


def tiny_gan(content=None, d_steps=1, tv=None, r1_weight=0.0):
    keras.utils.set_random_seed(0)
    gan = SRGAN(srresnet(num_filters=8, num_blocks=1), discriminator(patch=16, num_filters=8),
                content or PixelMSE(), AdversarialLoss(1e-3), DiscriminatorLoss(), tv, d_steps=d_steps,
                r1_weight=r1_weight)
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    return gan


def batch(n=2, seed=0):
    rng = np.random.default_rng(seed)
    hr = rng.uniform(0, 1, (n, 16, 16, 3)).astype(np.float32)
    lr = hr.reshape(n, 4, 4, 4, 4, 3).mean(axis=(2, 4))  # a box-filter x4 downscale
    return lr, hr


def weights(model):
    return [w.numpy() for w in model.trainable_weights]


def changed(before, model):
    return [not np.array_equal(a, b.numpy()) for a, b in zip(before, model.trainable_weights)]


def test_one_step_updates_both_networks_and_returns_named_losses():
    gan = tiny_gan(content=content_loss("vgg22", vgg_weights=None), tv=TotalVariation(2e-8))
    g0, d0 = weights(gan.generator), weights(gan.discriminator)
    out = {k: float(v) for k, v in gan.train_step(batch()).items()}
    assert set(out) == set(METRICS)
    assert all(np.isfinite(v) for v in out.values())
    assert all(changed(g0, gan.generator)) and all(changed(d0, gan.discriminator))
    assert 0 < out["d_real"] < 1 and 0 < out["d_fake"] < 1
    # g_loss = content + 1e-3 * -log D(G(x)) + TV (tiny): the adversarial term is weighted
    assert out["g_loss"] == pytest.approx(out["content"] + out["adversarial"], rel=1e-3)
    assert 0 < out["adversarial"] < 1e-2
    assert int(gan.g_optimizer.iterations) == 1 and int(gan.d_optimizer.iterations) == 1


def test_generator_step_scores_with_the_updated_discriminator():
    """Alternating: the adversarial term uses D after its update, not before."""
    gan = tiny_gan()
    lr, hr = batch()
    before = gan.discriminator.get_weights()
    out = gan.train_step((lr, hr))
    # Recompute -log D(G(x)) with the discriminator before its update: it must differ.
    d_after = gan.discriminator.get_weights()
    gan.discriminator.set_weights(before)
    g_after = gan.generator.get_weights()
    stale = float(AdversarialLoss(1e-3)(gan.discriminator(gan.generator(lr, training=False), training=False)))
    gan.discriminator.set_weights(d_after)
    gan.generator.set_weights(g_after)
    assert float(out["adversarial"]) != pytest.approx(stale, rel=1e-6)


def test_k_discriminator_steps_per_generator_step():
    gan = tiny_gan(d_steps=2)
    gan.train_step(batch(n=4))
    assert int(gan.d_optimizer.iterations) == 2 and int(gan.g_optimizer.iterations) == 1


def test_r1_weight_adds_the_penalty_to_the_discriminators_update_only():
    plain, with_r1 = tiny_gan(), tiny_gan(r1_weight=10.0)
    d_start = weights(plain.discriminator)
    assert all(np.array_equal(a, b) for a, b in zip(d_start, weights(with_r1.discriminator)))
    out0 = {k: float(v) for k, v in plain.train_step(batch()).items()}
    out1 = {k: float(v) for k, v in with_r1.train_step(batch()).items()}
    assert "r1" not in out0 and set(out1) == set(METRICS) | {"r1"} and out1["r1"] > 0
    assert out1["d_loss"] == pytest.approx(out0["d_loss"], rel=1e-5)  # reported without the penalty
    assert any(not np.allclose(a, b) for a, b in zip(weights(plain.discriminator), weights(with_r1.discriminator)))
    with pytest.raises(ValueError, match="r1_weight"):
        tiny_gan(r1_weight=-1.0)


def test_model_fit_runs_one_step():
    gan = tiny_gan()
    g0 = weights(gan.generator)
    data = tf.data.Dataset.from_tensors(batch())
    history = gan.fit(data, epochs=1, shuffle=False, verbose=0).history
    assert set(METRICS) <= set(history)
    assert int(gan.g_optimizer.iterations) == 1 and int(gan.d_optimizer.iterations) == 1
    assert any(changed(g0, gan.generator))


def test_pretraining_step_moves_only_the_generator_towards_hr():
    keras.utils.set_random_seed(0)
    model = SRResNetTrainer(srresnet(num_filters=8, num_blocks=1), PixelMSE())
    model.compile(keras.optimizers.Adam(1e-3))
    lr, hr = batch()
    first = float(model.train_step((lr, hr))["content"])
    for _ in range(5):
        last = float(model.train_step((lr, hr))["content"])
    assert last < first
