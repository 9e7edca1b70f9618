import numpy as np
import pytest
import tensorflow as tf

import common  # noqa: F401

from esrgan.losses import (
    GeneratorLoss,
    L1Loss,
    PerceptualLoss,
    RelativisticDiscriminatorLoss,
    RelativisticGeneratorLoss,
)


def _log_sigmoid(x):
    return -np.log1p(np.exp(-x))


def _logits(seed=0, n=6):
    rng = np.random.default_rng(seed)
    return rng.normal(1.0, 1.5, (n, 1)).astype(np.float32), rng.normal(-0.5, 1.0, (n, 1)).astype(np.float32)


def test_discriminator_loss_matches_the_relativistic_average_formula():
    real, fake = _logits()
    d_real = real - fake.mean()  # logit of D_Ra(x_r, x_f)
    d_fake = fake - real.mean()  # logit of D_Ra(x_f, x_r)
    paper = -_log_sigmoid(d_real).mean() - _log_sigmoid(-d_fake).mean()  # log(1 - sigmoid(z)) = log_sigmoid(-z)
    assert float(RelativisticDiscriminatorLoss(average=False)(real, fake)) == pytest.approx(paper, rel=1e-5)
    assert float(RelativisticDiscriminatorLoss()(real, fake)) == pytest.approx(paper / 2, rel=1e-5)


def test_generator_loss_swaps_the_roles_and_carries_its_weight():
    real, fake = _logits(1)
    d_real, d_fake = real - fake.mean(), fake - real.mean()
    paper = -_log_sigmoid(-d_real).mean() - _log_sigmoid(d_fake).mean()
    g = RelativisticGeneratorLoss()
    assert g.weight == 5e-3
    assert float(g(real, fake)) == pytest.approx(5e-3 * paper / 2, rel=1e-5)
    assert float(RelativisticGeneratorLoss(1.0, average=False)(real, fake)) == pytest.approx(paper, rel=1e-5)


def test_relativistic_losses_are_stable_for_huge_logits_and_use_both_sides():
    real = tf.constant([[1e4], [2e4]])
    fake = tf.constant([[-1e4], [-3e4]])
    assert np.isfinite(float(RelativisticDiscriminatorLoss()(real, fake)))
    assert float(RelativisticDiscriminatorLoss()(real, fake)) == pytest.approx(0.0, abs=1e-6)
    assert float(RelativisticGeneratorLoss(1.0)(real, fake)) > 1e3
    real, fake = (tf.constant(a) for a in _logits(2))
    with tf.GradientTape() as tape:
        tape.watch(real)
        loss = RelativisticGeneratorLoss()(real, fake)
    assert np.abs(tape.gradient(loss, real).numpy()).sum() > 0  # real logits matter to G too


def test_l1_loss_weight():
    hr = np.zeros((1, 4, 4, 3), np.float32)
    sr = np.full((1, 4, 4, 3), 0.5, np.float32)
    assert L1Loss().weight == 1e-2
    assert float(L1Loss()(hr, sr)) == pytest.approx(5e-3)
    assert float(L1Loss(2.0)(hr, sr)) == pytest.approx(1.0)


def _vgg():
    from common.vgg import vgg_features

    return vgg_features(("conv5_4",), before_activation=True, weights=None)


def test_perceptual_loss_is_weighted_l1_of_pre_activation_features():
    vgg = _vgg()
    rng = np.random.default_rng(0)
    hr = rng.uniform(size=(2, 32, 32, 3)).astype(np.float32)
    sr = np.clip(hr + rng.normal(0, 0.1, hr.shape), 0, 1).astype(np.float32)
    loss = PerceptualLoss(vgg, weight=0.5)
    assert float(loss(hr, hr)) == 0.0
    f_hr, f_sr = vgg(hr)["conv5_4"].numpy(), vgg(sr)["conv5_4"].numpy()
    assert (f_hr < 0).any()  # before the ReLU
    assert float(loss(hr, sr)) == pytest.approx(0.5 * np.abs(f_hr - f_sr).mean(), rel=1e-4)


def test_perceptual_loss_accepts_lists_and_tensors():
    hr = np.zeros((1, 8, 8, 3), np.float32)
    sr = np.ones((1, 8, 8, 3), np.float32)
    assert float(PerceptualLoss(lambda x: [x, 2 * x])(hr, sr)) == pytest.approx(3.0)
    assert float(PerceptualLoss(lambda x: x, weight=4)(hr, sr)) == pytest.approx(4.0)


def test_generator_total_is_percep_plus_weighted_gan_and_l1():
    rng = np.random.default_rng(3)
    hr = rng.uniform(size=(2, 8, 8, 3)).astype(np.float32)
    sr = rng.uniform(size=(2, 8, 8, 3)).astype(np.float32)
    real, fake = _logits(4, n=2)
    percep = PerceptualLoss(lambda x: x)
    parts = GeneratorLoss(percep)(hr, sr, real, fake)
    expected = (float(percep(hr, sr)) + 5e-3 * float(RelativisticGeneratorLoss(1.0)(real, fake))
                + 1e-2 * np.abs(hr - sr).mean())
    assert float(parts["total"]) == pytest.approx(expected, rel=1e-5)
    assert set(parts) == {"total", "perceptual", "gan", "l1"}


def test_esrgan_takes_shared_losses_from_common_not_from_srgan():
    """Only the ablation study reuses srgan (its srresnet columns); the rest imports no srgan module."""
    import ast
    from pathlib import Path

    import common.losses

    assert RelativisticGeneratorLoss is common.losses.RelativisticGeneratorLoss
    assert issubclass(L1Loss, common.losses.PixelL1) and issubclass(PerceptualLoss, common.losses.FeatureLoss)
    package = Path(__file__).resolve().parents[2] / "esrgan"
    importers = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(m == "srgan" or m.startswith("srgan.") for m in modules):
                importers.append(path.name)
    assert set(importers) <= {"ablation.py"}, importers


def test_pixel_loss_adds_the_low_pass_term_only_when_weighted():
    from esrgan.losses import pixel_loss

    rng = np.random.default_rng(3)
    hr = rng.uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    sr = hr + np.float32(0.1)  # a brightness shift: every 4x4 block mean moves by 0.1
    assert float(pixel_loss(4, 0.5)(hr, sr)) == pytest.approx(0.05, rel=1e-4)
    assert float(pixel_loss(4, 0.5, lowpass_weight=2.0)(hr, sr)) == pytest.approx(0.05 + 0.2, rel=1e-4)


def test_normalised_feature_loss_is_a_weighted_relative_l1():
    from esrgan.losses import normalised_feature_loss

    hr = np.full((1, 4, 4, 2), 2.0, np.float32)
    loss = normalised_feature_loss(lambda x: x, weight=3.0, to_input=lambda x: x * 10.0)
    assert float(loss(hr, hr * 1.5)) == pytest.approx(3.0 * 0.5, rel=1e-5)  # |30 - 20| / 20, scale-free
    assert loss.describe()["normalised"] is True and loss.describe()["distance"] == "l1"
