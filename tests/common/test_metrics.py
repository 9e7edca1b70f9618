import math

import numpy as np
import pytest
import tensorflow as tf
from skimage.metrics import structural_similarity

from common.images import rgb_to_y
from common.metrics import psnr, psnr_tf, ssim, ssim_tf


def rng_image(seed, shape=(48, 40, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def test_identical_images_psnr_inf_ssim_one():
    img = rng_image(0)
    assert psnr(img, img) == math.inf
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)


def test_psnr_hand_computed_grey():
    a = np.full((10, 10), 100, np.uint8)
    b = a.copy()
    b[0, 0] = 110  # one pixel off by 10 -> MSE = 100 / 100 = 1
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 1.0), abs=1e-9)
    # the differing pixel sits in the cropped border
    assert psnr(a, b, crop_border=1) == math.inf


def test_psnr_uses_bt601_y():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[..., 0] = 255  # pure red: Y differs by 65.481
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 65.481**2), abs=1e-6)
    assert psnr(a, b, y_channel=False) == pytest.approx(10 * math.log10(3), abs=1e-6)


def test_y_range_is_16_235():
    assert rgb_to_y(np.zeros((1, 1, 3)))[0, 0] * 255 == pytest.approx(16)
    assert rgb_to_y(np.ones((1, 1, 3)))[0, 0] * 255 == pytest.approx(235)


def test_ssim_matches_scikit_image():
    a = rng_image(1, (64, 64))
    b = np.clip(a.astype(int) + np.random.default_rng(2).integers(-30, 30, a.shape), 0, 255)
    ref = structural_similarity(a.astype(float), b.astype(float), gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=255)
    assert ssim(a, b) == pytest.approx(ref, abs=1e-4)
    assert ssim(a, b) < 0.99


def test_tf_metrics_equal_numpy():
    a = rng_image(3, (2, 40, 36, 3))
    b = np.clip(a.astype(int) + np.random.default_rng(4).integers(-20, 20, a.shape), 0, 255).astype(np.uint8)
    p_tf = psnr_tf(tf.constant(a / 255.0), tf.constant(b / 255.0), crop_border=4).numpy()
    s_tf = ssim_tf(tf.constant(a / 255.0), tf.constant(b / 255.0), crop_border=4).numpy()
    for i in range(2):
        assert p_tf[i] == pytest.approx(psnr(a[i], b[i], crop_border=4), abs=1e-3)
        assert s_tf[i] == pytest.approx(ssim(a[i], b[i], crop_border=4), abs=1e-4)
