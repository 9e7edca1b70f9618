import math

import cv2
import numpy as np
import pytest
import tensorflow as tf
from skimage.metrics import structural_similarity

from common.images import rgb_to_y
from common.metrics import false_colour, psnr, psnr_tf, ssim, ssim_tf


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


# --- false colour ------------------------------------------------------------------------------

# Full-swing BT.601 chroma from the standard's coefficients (JPEG/JFIF), not from common.images.
_CB = np.array([-0.168736, -0.331264, 0.5])
_CR = np.array([0.5, -0.418688, -0.081312])


def reference_false_colour(sr, hr, crop=0):
    """An independent implementation: scipy's Gaussian filter (mode reflect, truncate 4)."""
    from scipy.ndimage import gaussian_filter

    def chroma(x):
        x = np.asarray(x, np.float64)
        x = np.repeat(x[..., None], 3, axis=2) if x.ndim == 2 else x
        x = x[crop:x.shape[0] - crop, crop:x.shape[1] - crop]
        return [x @ _CB, x @ _CR]

    total = 0.0
    for s, h in zip(chroma(sr), chroma(hr)):
        d_sr = np.abs(s - gaussian_filter(s, 1.5, mode="reflect"))
        d_hr = np.abs(h - gaussian_filter(h, 1.5, mode="reflect"))
        total += np.mean(np.clip(d_sr - np.maximum(d_hr, gaussian_filter(d_hr, 2.0, mode="reflect")), 0, None))
    return total


def blue_square_wave(shape=(24, 40), amplitude=20):
    """Grey 128 with blue +-amplitude in columns of period 4 (+, -, -, +): a chroma-only pattern
    that a reflecting border continues (it is symmetric about x = -0.5 and every even width)."""
    img = np.full(shape + (3,), 128.0)
    sign = np.where(((np.arange(shape[1]) + 1) // 2) % 2 == 0, 1.0, -1.0)
    img[..., 2] += amplitude * sign
    return img.astype(np.uint8)


def test_false_colour_zero_for_identical_images():
    img = rng_image(5, (40, 48, 3))
    assert false_colour(img, img) == 0.0
    assert false_colour(img, img, crop_border=4) == 0.0


def test_false_colour_zero_for_grey_images():
    sr, hr = rng_image(6, (40, 48)), rng_image(7, (40, 48))  # different grey noise: flat chroma
    assert false_colour(sr, hr) == pytest.approx(0.0, abs=1e-9)
    assert false_colour(np.repeat(sr[..., None], 3, axis=2), hr) == pytest.approx(0.0, abs=1e-9)


def test_false_colour_of_a_chroma_square_wave_on_flat_hr():
    sr, hr = blue_square_wave(), np.full((24, 40, 3), 128, np.uint8)
    # A period-4 wave is one sinusoid (frequency 1/4): the blur scales it by H, the kernel's
    # response there, so |SR - blur(SR)| = |1 - H| * amplitude at every pixel; Cb moves by
    # 0.5 * 20 and Cr by 0.081312 * 20 levels.
    k = np.arange(-6, 7)  # the 13-tap kernel of sigma 1.5
    w = np.exp(-(k**2) / (2 * 1.5**2))
    response = np.sum(w * np.cos(np.pi * k / 2)) / w.sum()
    expected = (0.5 + 0.081312) * 20 * abs(1 - response)
    assert expected > 10
    assert false_colour(sr, hr) == pytest.approx(expected, rel=1e-4)
    assert false_colour(sr, hr, crop_border=4) == pytest.approx(expected, rel=1e-4)


def test_false_colour_matches_an_independent_implementation():
    rng = np.random.default_rng(8)
    hr = cv2.GaussianBlur(rng_image(9, (48, 56, 3)), (0, 0), 2)
    sr = np.clip(hr + rng.normal(0, 6, hr.shape), 0, 255).astype(np.uint8)
    value = false_colour(sr, hr, crop_border=4)
    assert value > 0.5
    assert value == pytest.approx(reference_false_colour(sr, hr, crop=4), rel=1e-6)


def test_false_colour_allows_chroma_detail_hr_has():
    sr, flat = blue_square_wave(), np.full((24, 40, 3), 128, np.uint8)
    weaker = blue_square_wave(amplitude=12)  # HR with some of SR's detail
    assert false_colour(sr, weaker) < false_colour(sr, flat)
    assert false_colour(sr, blue_square_wave()) == pytest.approx(0.0, abs=1e-9)


def test_false_colour_is_not_symmetric():
    wave, flat = blue_square_wave(), np.full((24, 40, 3), 128, np.uint8)
    assert false_colour(wave, flat) > 10
    assert false_colour(flat, wave) == 0.0  # detail SR lacks is blur, not false colour


def test_false_colour_rejects_different_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        false_colour(rng_image(0, (8, 8, 3)), rng_image(0, (8, 10, 3)))
