"""PSNR and SSIM the field's way: Y channel (BT.601, 16-235), `crop_border` pixels removed,
values in uint8 range, float64. numpy versions for evaluation, TF versions for training.

SSIM is Wang et al.'s / MATLAB's: 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03,
statistics over the valid region only.
"""
import math

import cv2
import numpy as np

from common.images import rgb_to_y, rgb_to_y_tf


def _prepare(image, crop_border: int, y_channel: bool) -> np.ndarray:
    """uint8-range (H, W[, C]) array -> float64 (Y or all channels) in [0, 255], border cropped."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        image = image[..., None]
    if y_channel and image.shape[2] == 3:
        image = rgb_to_y(image / 255.0)[..., None] * 255.0
    if crop_border:
        image = image[crop_border:-crop_border, crop_border:-crop_border]
    return image


def psnr(a, b, crop_border: int = 0, y_channel: bool = True) -> float:
    """PSNR in dB between two uint8-range images; inf for identical images."""
    a, b = _prepare(a, crop_border, y_channel), _prepare(b, crop_border, y_channel)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    mse = np.mean((a - b) ** 2)
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = cv2.getGaussianKernel(11, 1.5)
    window = g @ g.T

    def filt(x):
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]  # 'valid' region

    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return float(ssim_map.mean())


def ssim(a, b, crop_border: int = 0, y_channel: bool = True) -> float:
    """SSIM (MATLAB definition) between two uint8-range images, mean over channels."""
    a, b = _prepare(a, crop_border, y_channel), _prepare(b, crop_border, y_channel)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.mean([_ssim_channel(a[..., c], b[..., c]) for c in range(a.shape[2])]))


# --- TensorFlow versions: (N, H, W, C) tensors in [0, 1]; computed in float64 -----------------


def _prepare_tf(images, crop_border: int, y_channel: bool):
    import tensorflow as tf

    x = tf.cast(images, tf.float64)
    if y_channel and x.shape[-1] == 3:
        x = rgb_to_y_tf(x)
    if crop_border:
        x = x[:, crop_border:-crop_border, crop_border:-crop_border, :]
    return x * 255.0


def psnr_tf(a, b, crop_border: int = 0, y_channel: bool = True):
    """Per-image PSNR (N,) of [0, 1] batches; inputs are not quantised (round them first to
    match the numpy metric on saved images)."""
    import tensorflow as tf

    a, b = _prepare_tf(a, crop_border, y_channel), _prepare_tf(b, crop_border, y_channel)
    mse = tf.reduce_mean(tf.square(a - b), axis=[1, 2, 3])
    return 10.0 * tf.math.log(255.0**2 / mse) / tf.math.log(tf.constant(10.0, tf.float64))


def ssim_tf(a, b, crop_border: int = 0, y_channel: bool = True):
    """Per-image SSIM (N,) of [0, 1] batches, MATLAB definition."""
    import tensorflow as tf

    a, b = _prepare_tf(a, crop_border, y_channel), _prepare_tf(b, crop_border, y_channel)
    return tf.image.ssim(a, b, max_val=255.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03)


def niqe(image, crop_border: int = 0, params_path=None) -> float:
    """NIQE (Mittal et al.) of an RGB uint8-range image on its Y channel; lower is better."""
    from common.niqe import niqe as _niqe

    return _niqe(image, crop_border=crop_border, params_path=params_path)
