import json

import numpy as np
import pytest

import common  # noqa: F401

from common.checkpoints import load_model, save_model
from esrgan import interpolate
from esrgan.interpolate import IncompatibleModels, interpolate_models, interpolate_weights
from esrgan.models import discriminator, rrdb_generator

TINY = dict(scale=2, num_filters=8, num_blocks=1, growth=4)


def randomise(model, seed):
    rng = np.random.default_rng(seed)
    for v in model.weights:  # trainable and moving statistics alike
        v.assign(rng.uniform(0.1, 1.0, tuple(v.shape)).astype(np.float32))
    return model


def x_lr(seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (1, 8, 8, 3)).astype(np.float32)


def test_ends_reproduce_the_models_exactly_and_half_is_the_mean():
    a, b = randomise(rrdb_generator(**TINY), 1), randomise(rrdb_generator(**TINY), 2)
    x = x_lr()
    np.testing.assert_array_equal(interpolate_models(a, b, 0.0)(x).numpy(), a(x).numpy())
    np.testing.assert_array_equal(interpolate_models(a, b, 1.0)(x).numpy(), b(x).numpy())
    mid = interpolate_models(a, b, 0.5)
    for wm, wa, wb in zip(mid.weights, a.weights, b.weights):
        np.testing.assert_allclose(wm.numpy(), (wa.numpy() + wb.numpy()) / 2, rtol=1e-7)
    assert not np.allclose(mid(x).numpy(), a(x).numpy())


def test_batch_norm_moving_statistics_are_interpolated():
    a = randomise(discriminator(patch=32, num_filters=4), 3)
    b = randomise(discriminator(patch=32, num_filters=4), 4)
    blended = interpolate_models(a, b, 0.8)
    layer = blended.get_layer("bn1_0")
    stats = {v.path.split("/")[-1]: v.numpy() for v in layer.weights}
    ref_a = {v.path.split("/")[-1]: v.numpy() for v in a.get_layer("bn1_0").weights}
    ref_b = {v.path.split("/")[-1]: v.numpy() for v in b.get_layer("bn1_0").weights}
    for name in ("moving_mean", "moving_variance", "gamma", "beta"):
        np.testing.assert_allclose(stats[name], 0.2 * ref_a[name] + 0.8 * ref_b[name], rtol=1e-6)
    img = np.random.default_rng(5).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(interpolate_models(a, b, 1.0)(img, training=False).numpy(),
                                  b(img, training=False).numpy())


def test_incompatible_models_are_refused():
    small = rrdb_generator(**TINY)
    wider = rrdb_generator(**{**TINY, "num_filters": 16})
    with pytest.raises(IncompatibleModels, match="shape"):
        interpolate_models(small, wider, 0.5)
    with pytest.raises(IncompatibleModels, match="weight arrays"):
        interpolate_weights([np.zeros(2)], [np.zeros(2), np.zeros(3)], 0.5)


def test_command_line(tmp_path, capsys):
    a, b = randomise(rrdb_generator(**TINY), 6), randomise(rrdb_generator(**TINY), 7)
    meta = {"architecture": "rrdb_generator", "args": TINY, "scale": 2, "color": "rgb"}
    save_model(a, tmp_path / "psnr.h5", {**meta, "val_psnr": 30.0})
    save_model(b, tmp_path / "gan.h5", meta)
    out = tmp_path / "interp.h5"
    assert interpolate.main(["--psnr", str(tmp_path / "psnr.h5"), "--gan", str(tmp_path / "gan.h5"),
                             "--alpha", "0.8", "-o", str(out)]) == 0
    model, saved = load_model(out)
    x = x_lr(1)
    np.testing.assert_allclose(model(x).numpy(), interpolate_models(a, b, 0.8)(x).numpy(), rtol=1e-6)
    assert saved["interpolation"]["alpha"] == 0.8 and "val_psnr" not in saved
    assert json.loads((tmp_path / "interp.json").read_text())["architecture"] == "rrdb_generator"

    capsys.readouterr()
    for gan, alpha, message in ((tmp_path / "missing.h5", "0.5", "not found"), (tmp_path / "gan.h5", "1.5", "alpha")):
        assert interpolate.main(["--psnr", str(tmp_path / "psnr.h5"), "--gan", str(gan),
                                 "--alpha", alpha, "-o", str(tmp_path / "bad.h5")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --") and message in err and err.count("\n") == 1
    assert not (tmp_path / "bad.h5").exists()
