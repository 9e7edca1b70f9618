"""Real-world degradations: parameter draws follow the configured ranges, kernels and filters are
what they claim, the pipeline applies them per example and resumes bit-exactly after kill -9."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.special

import common  # noqa: F401
import tensorflow as tf

from common.data import eval_pairs, train_dataset
from common.degradations import DEGRADATIONS, degrade, make_degradation, parse_options
from common.images import write_image
from common.realworld import (BSRGAN, RealESRGAN, filter2d, gaussian_family_kernel, pulse_kernel,
                              sinc_kernel)

REPO = Path(__file__).resolve().parents[2]
SET5 = REPO.parent / "shared" / "data" / "Set5"
N = 10_000


def draws(degradation, n=N, seed=7):
    """n parameter dicts drawn from keys (seed, i), stacked per parameter."""
    key = tf.constant([seed, 0], tf.int64)
    ds = tf.data.Dataset.range(n).map(lambda i: degradation.draw(tf.random.experimental.stateless_fold_in(key, i)))
    batch = next(iter(ds.batch(n)))
    return {k: v.numpy() for k, v in batch.items()}


def share(mask) -> float:
    return float(np.mean(mask))


@pytest.fixture(scope="module")
def real():
    return RealESRGAN(), draws(RealESRGAN())


def test_realesrgan_draws_follow_the_published_ranges(real):
    config, p = real
    for stage, probs, sinc, sigma in (("blur1_", config.kernel_probs, 0.1, (0.2, 3.0)),
                                      ("blur2_", config.kernel_probs2, 0.1, (0.2, 1.5))):
        sizes = p[stage + "size"]
        assert set(np.unique(sizes)) == set(range(7, 22, 2))  # every odd size 7..21, nothing else
        assert max(abs(share(sizes == s) - 1 / 8) for s in range(7, 22, 2)) < 0.02
        kinds = p[stage + "type"]
        assert abs(share(kinds == 6) - sinc) < 0.015
        not_sinc = kinds[kinds != 6]
        for k, prob in enumerate(probs):
            assert abs(share(not_sinc == k) - prob / sum(probs)) < 0.02, (stage, k)
        sx = p[stage + "sigma_x"]
        assert sigma[0] <= sx.min() and sx.max() <= sigma[1]
        assert abs(sx.mean() - sum(sigma) / 2) < 0.05
        iso = (kinds % 2 == 0) & (kinds != 6)
        assert np.array_equal(p[stage + "sigma_y"][iso], sx[iso]) and (p[stage + "theta"][iso] == 0).all()
        beta = p[stage + "beta"]
        assert (beta[kinds < 2] == 1).all()
        assert 0.5 <= beta[(kinds >= 2) & (kinds < 4)].min() and beta[(kinds >= 2) & (kinds < 4)].max() <= 4
        assert 1 <= beta[(kinds >= 4) & (kinds < 6)].min() and beta[(kinds >= 4) & (kinds < 6)].max() <= 2
        small = sizes < 13  # sinc cut-off: [pi/3, pi] below 13 px, [pi/5, pi] from 13 px
        assert p[stage + "cutoff"][small].min() >= np.pi / 3 - 1e-6
        assert p[stage + "cutoff"][~small].min() < np.pi / 3
    for stage, probs, factors in (("resize1_", (0.2, 0.7, 0.1), (0.15, 1.5)), ("resize2_", (0.3, 0.4, 0.3), (0.3, 1.2))):
        direction, factor = p[stage + "direction"], p[stage + "factor"]
        for k, prob in enumerate(probs):
            assert abs(share(direction == k) - prob) < 0.02
        assert factor[direction == 0].min() >= 1 and factor[direction == 0].max() <= factors[1]
        assert factor[direction == 1].min() >= factors[0] and factor[direction == 1].max() <= 1
        assert (factor[direction == 2] == 1).all()
        assert max(abs(share(p[stage + "mode"] == m) - 1 / 3) for m in range(3)) < 0.02
    for stage, top in (("noise1_", 30), ("noise2_", 25)):
        assert abs(share(p[stage + "noise"] == 0) - 0.5) < 0.02
        assert abs(share(p[stage + "grey"]) - 0.4) < 0.02
        sigma = p[stage + "sigma"] * 255
        assert 1 <= sigma.min() and sigma.max() <= top and abs(sigma.mean() - (1 + top) / 2) < 0.4
    for name in ("jpeg1", "jpeg2"):
        assert 30 <= p[name].min() and p[name].max() <= 95
    assert abs(share(p["blur2_on"]) - 0.8) < 0.02 and abs(share(p["final_sinc"]) - 0.8) < 0.02
    assert abs(share(p["jpeg_first"]) - 0.5) < 0.02
    assert len({tuple(k) for k in p["noise1_key"][:100]}) == 100  # each example its own noise


def test_changed_ranges_change_the_draws():
    narrow = make_degradation("realesrgan", ["noise_range=5,6", "sinc_prob=0", "resize_probs=0,0,1"])
    p = draws(narrow, n=2000)
    sigma = p["noise1_sigma"] * 255
    assert 5 <= sigma.min() and sigma.max() <= 6
    assert (p["blur1_type"] != 6).all() and (p["resize1_factor"] == 1).all()


def test_bsrgan_draws_a_valid_order_and_its_ranges():
    p = draws(BSRGAN(), n=4000)
    orders = p["order"]
    assert all(sorted(o) == list(range(6)) for o in orders)
    assert all(list(o).index(2) < list(o).index(3) for o in orders)  # intermediate before final downscale
    assert len({tuple(o) for o in orders}) > 300  # 360 orders keep 2 before 3
    level = p["noise_level"]
    assert set(np.unique(level)) == set(range(2, 26))
    for k, prob in enumerate((0.4, 0.4, 0.2)):
        assert abs(share(p["noise_kind"] == k) - prob) < 0.03
    assert abs(share(p["jpeg_on"]) - 0.9) < 0.02 and abs(share(p["halve"]) - 0.25) < 0.02
    assert set(np.unique(p["blur1_size"])) == set(range(7, 26, 2))


@pytest.mark.parametrize("bad", [["noise_range=30,1"], ["sinc_prob=1.5"], ["kernel_range=6,21"], ["nope=1"],
                                 ["noise_range=a,b"], ["resize_probs=1,1"]])
def test_bad_options_are_refused_naming_the_field(bad):
    with pytest.raises(ValueError) as info:
        make_degradation("realesrgan", bad)
    assert bad[0].split("=")[0].replace("nope", "NAME") in str(info.value)


def test_options_parse_tuples_and_numbers():
    parsed = parse_options(RealESRGAN, ["jpeg_range=60,90", "final_sinc_prob=0.5", "kernel_range=7,11"])
    assert parsed == {"jpeg_range": (60.0, 90.0), "final_sinc_prob": 0.5, "kernel_range": (7, 11)}


def _numpy_gaussian(size, sx, sy, theta, beta=1.0, plateau=False):
    r = np.arange(size) - (size - 1) / 2
    xx, yy = np.meshgrid(r, r)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    inv = np.linalg.inv(rot @ np.diag([sx**2, sy**2]) @ rot.T)
    d = np.stack([xx, yy], -1)
    q = np.einsum("...i,ij,...j->...", d, inv, d)
    k = 1 / (q**beta + 1) if plateau else np.exp(-0.5 * q**beta)
    return k / k.sum()


def test_kernels_match_their_formulas():
    k = gaussian_family_kernel(21, 11, 0, 2.0, 0.7, 0.6, 1.0).numpy()
    expected = np.pad(_numpy_gaussian(11, 2.0, 0.7, 0.6), 5)
    np.testing.assert_allclose(k, expected, atol=1e-6)
    g = gaussian_family_kernel(21, 21, 1, 1.5, 1.5, 0.0, 2.5).numpy()
    np.testing.assert_allclose(g, _numpy_gaussian(21, 1.5, 1.5, 0.0, 2.5), atol=1e-6)
    p = gaussian_family_kernel(21, 9, 2, 1.0, 2.0, 1.0, 1.5).numpy()
    np.testing.assert_allclose(p, np.pad(_numpy_gaussian(9, 1.0, 2.0, 1.0, 1.5, plateau=True), 6), atol=1e-6)
    # the 2-D sinc: J1 from scipy, independent of TF's Bessel function
    s = sinc_kernel(21, 13, 1.3).numpy()
    r = np.hypot(*np.meshgrid(np.arange(13) - 6.0, np.arange(13) - 6.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = np.where(r > 0, 1.3 * scipy.special.j1(1.3 * r) / (2 * np.pi * r), 1.3**2 / (4 * np.pi))
    np.testing.assert_allclose(s, np.pad(ref / ref.sum(), 4), atol=1e-6)


def test_filter_reflects_even_on_images_smaller_than_the_kernel():
    rng = np.random.default_rng(1)
    image = rng.random((5, 7, 3)).astype(np.float32)
    np.testing.assert_array_equal(filter2d(tf.constant(image), pulse_kernel(21)).numpy(), image)
    box = np.full((21, 21), 1 / 441, np.float32)
    padded = np.pad(image, ((10, 10), (10, 10), (0, 0)), mode="reflect")
    expected = np.stack([[padded[y:y + 21, x:x + 21].mean(axis=(0, 1)) for x in range(7)] for y in range(5)])
    np.testing.assert_allclose(filter2d(tf.constant(image), tf.constant(box)).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("name", ["realesrgan", "bsrgan"])
@pytest.mark.parametrize("size", [(32, 32), (64, 48)])
def test_outputs_have_the_lr_size_and_depend_only_on_the_key(name, size):
    degradation = make_degradation(name)
    rng = np.random.default_rng(3)
    hr = tf.constant(rng.random((*size, 3)).astype(np.float32))
    outs = [degradation(hr, tf.constant([5, i], tf.int64), 4).numpy() for i in range(6)]
    for out in outs:
        assert out.shape == (size[0] // 4, size[1] // 4, 3) and 0 <= out.min() and out.max() <= 1
    again = degradation(hr, tf.constant([5, 0], tf.int64), 4).numpy()
    assert again.tobytes() == outs[0].tobytes()
    assert len({o.tobytes() for o in outs}) == 6


def test_every_name_is_a_choice_and_fixed_ones_keep_the_protocol():
    assert set(DEGRADATIONS) >= {"bicubic", "gaussian", "nearest", "realesrgan", "bsrgan"}
    hr = np.random.default_rng(0).random((24, 24, 3)).astype(np.float32)
    # the fixed degradations ignore the key; the real-world ones change with it
    assert np.array_equal(degrade(hr, 4, "bicubic", 1, 0), degrade(hr, 4, "bicubic", 2, 5))
    assert not np.array_equal(degrade(hr, 4, "realesrgan", 1, 0), degrade(hr, 4, "realesrgan", 1, 1))


@pytest.fixture(scope="module")
def textures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rw_textures")
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(70, 80), (64, 64), (90, 72)]):
        write_image(folder / f"img{i}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return folder


def test_pipeline_degrades_each_crop_with_its_own_key_and_resumes(textures):
    kw = dict(scale=4, hr_patch=32, batch_size=4, seed=3, degradation="realesrgan")
    full = [(lr.numpy(), hr.numpy()) for lr, hr in train_dataset(textures, **kw).take(4)]
    resumed = [(lr.numpy(), hr.numpy()) for lr, hr in train_dataset(textures, start_step=2, **kw).take(2)]
    for (lr_a, hr_a), (lr_b, hr_b) in zip(full[2:], resumed):
        assert lr_a.tobytes() == lr_b.tobytes() and hr_a.tobytes() == hr_b.tobytes()
    lr, hr = full[0]
    assert lr.shape == (4, 8, 8, 3)
    assert np.array_equal(np.round(lr * 255), lr * 255)  # rounded to 8 bits like a saved file
    # two equal crops in one batch still get different degradations (per example, not per batch)
    twice = [(lr.numpy(), hr.numpy()) for lr, hr in train_dataset(textures, **{**kw, "seed": 4}).take(1)]
    assert not np.array_equal(twice[0][0], lr)


def test_degraded_validation_pairs_are_fixed_and_differ_from_bicubic():
    a = [(n, lr) for n, _, lr in eval_pairs(SET5, 4, "realesrgan")]
    b = [(n, lr) for n, _, lr in eval_pairs(SET5, 4, "realesrgan")]
    clean = [lr for _, _, lr in eval_pairs(SET5, 4)]
    assert [n for n, _ in a] == ["baby", "bird", "butterfly", "head", "woman"]
    for (_, x), (_, y), c in zip(a, b, clean):
        assert x.tobytes() == y.tobytes() and x.shape == c.shape
        assert np.abs(x - c).mean() > 0.005


def _checkpoint_values(run_dir: Path) -> dict:
    path = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(path)
            if not name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH")}


def test_a_real_world_run_killed_and_resumed_equals_an_uninterrupted_one(textures, tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1"}
    command = [sys.executable, "-m", "esrgan.train", "--preset", "tiny", "--degradation", "realesrgan",
               "--train-data", str(textures), "--val-data", str(SET5), "--steps", "8",
               "--checkpoint-every", "2", "--validate-every", "100", "--hr-patch", "32", "--quiet"]
    straight = subprocess.run([*command, "--run-dir", str(tmp_path / "a")], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr[-2000:]
    killed = subprocess.Popen([*command, "--run-dir", str(tmp_path / "b")], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and killed.poll() is None:
        if list((tmp_path / "b" / "checkpoints").glob("*.index")):
            break
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL  # killed mid-run, not finished
    resumed = subprocess.run([*command, "--run-dir", str(tmp_path / "b")], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = _checkpoint_values(tmp_path / "a"), _checkpoint_values(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) > 10
    different = [k for k in a if a[k].tobytes() != b[k].tobytes()]
    assert not different, different[:5]


def test_unsharp_mask_matches_opencv_and_leaves_flat_images_alone():
    import cv2

    from common.realworld import usm_sharpen

    rng = np.random.default_rng(4)
    image = np.clip(rng.random((40, 48, 3)) * 0.3 + np.linspace(0, 0.6, 48)[None, :, None], 0, 1).astype(np.float32)
    image[:, 24:] += 0.3  # an edge the mask picks up
    image = np.clip(image, 0, 1)
    # BasicSR's usm_sharp, written out with OpenCV (reflect-101 borders, sigma from the 51-px size)
    blur = cv2.GaussianBlur(image, (51, 51), 0)
    residual = image - blur
    soft = cv2.GaussianBlur((np.abs(residual) * 255 > 10).astype(np.float32), (51, 51), 0)
    expected = soft * np.clip(image + 0.5 * residual, 0, 1) + (1 - soft) * image
    np.testing.assert_allclose(usm_sharpen(tf.constant(image)).numpy(), expected, atol=2e-5)
    flat = np.full((30, 30, 3), 0.4, np.float32)
    np.testing.assert_allclose(usm_sharpen(tf.constant(flat)).numpy(), flat, atol=1e-6)


@pytest.mark.parametrize("name", ["realesrgan", "bsrgan"])
def test_clean_share_gives_the_plain_bicubic_downscale_to_that_share(name):
    degradation = make_degradation(name, ["clean_prob=0.3"])
    assert abs(share(draws(degradation, n=3000)["clean"]) - 0.3) < 0.03
    assert not draws(make_degradation(name), n=500)["clean"].any()  # off by default, as published
    hr = tf.constant(np.random.default_rng(2).random((32, 40, 3)).astype(np.float32))
    bicubic = np.clip(degrade(hr.numpy(), 4, "bicubic"), 0, 1)
    seen = set()
    for i in range(8):
        key = tf.constant([1, i], tf.int64)
        params = degradation.draw(key)
        seen.add(bool(params["clean"]))
        out = degradation.apply(hr, params, 4).numpy()
        tf_bicubic = tf.clip_by_value(tf.image.resize(hr[None], [8, 10], "bicubic", antialias=True)[0], 0, 1)
        assert np.array_equal(out, tf_bicubic.numpy()) == bool(params["clean"])
        assert np.abs(tf_bicubic.numpy() - bicubic)[1:-1, 1:-1].max() < 0.02  # the field's bicubic, inside
    assert seen == {True, False}
