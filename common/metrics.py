"""PSNR and SSIM the field's way: Y channel (BT.601, 16-235), `crop_border` pixels removed,
values in uint8 range, float64. numpy versions for evaluation, TF versions for training.

SSIM is Wang et al.'s / MATLAB's: 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03,
statistics over the valid region only. `false_colour` scores the chroma detail an SR image has
where HR has none (lower is better; 0 for HR itself).
"""
import math

import cv2
import numpy as np

from common.images import rgb_to_y, rgb_to_y_tf, rgb_to_ycbcr


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


# Studio-swing chroma (16-240) -> full swing: the filed figures are in full-swing levels.
_FULL_SWING = 255.0 / 224.0


def _chroma(image, crop_border: int) -> np.ndarray:
    """uint8-range RGB (or grey) -> float64 (H, W, 2) BT.601 Cb, Cr in full-swing 8-bit levels."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if crop_border:
        image = image[crop_border:-crop_border, crop_border:-crop_border]
    return rgb_to_ycbcr(image / 255.0)[..., 1:] * 255.0 * _FULL_SWING


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    # cv2, kernel 2*ceil(4 sigma)+1 (= scipy's gaussian_filter, truncate 4); BORDER_REFLECT repeats
    # the edge pixel (scipy's mode "reflect"), so a flat image stays flat up to its border
    k = 2 * math.ceil(4 * sigma) + 1
    return cv2.GaussianBlur(x, (k, k), sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def false_colour(sr, hr, crop_border: int = 0) -> float:
    """The chroma detail SR has where HR has none, in 8-bit levels (lower is better; 0 when SR = HR).

    Both uint8-range RGB images (grey ones have flat chroma: no special case) go to BT.601 Cb and
    Cr (`common.images.rgb_to_ycbcr`, the YCbCr of `rgb_to_y`) in full-swing levels (0-255, as
    JPEG's and cv2's YCrCb; studio-swing levels would give 224/255 of every figure), after
    `crop_border` pixels are cropped from each side, as psnr/ssim crop before they compute (the
    protocol uses crop_border = scale). Per pixel and channel, with G_s a Gaussian blur of sigma s:
    SR's detail |SR - G1.5(SR)| minus HR's allowance max(d, G2(d)), d = |HR - G1.5(HR)|, clipped
    at 0; the mean over pixels, summed over Cb and Cr. Not symmetric: HR's chroma detail missing
    from SR costs nothing (that is blur, which PSNR sees).

    The allowance of issue 32 was G2(d) alone. That scores HR against itself 0.94 on Set14 x4 (a
    detail peak exceeds its own smoothing), so max(d, .) makes SR = HR score 0. With G2(d) alone
    and this crop and colour convention, the issue's Set14 x4 figures are reproduced to 0.01
    (bicubic 0.03, rrdb_x4 0.25, krasserm:srgan 1.10, srgan_x4 1.31, esrgan_x4 1.42, outputs of
    the upscaler of that time); max(d, .) lowers them to 0.02, 0.22, 1.00, 1.18, 1.32.
    """
    s, h = _chroma(sr, crop_border), _chroma(hr, crop_border)
    if s.shape != h.shape:
        raise ValueError(f"shapes differ: {s.shape[:2]} vs {h.shape[:2]}")
    total = 0.0
    for c in range(2):
        detail_sr = np.abs(s[..., c] - _blur(s[..., c], 1.5))
        detail_hr = np.abs(h[..., c] - _blur(h[..., c], 1.5))
        allowance = np.maximum(detail_hr, _blur(detail_hr, 2.0))
        total += float(np.maximum(detail_sr - allowance, 0.0).mean())
    return total


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
