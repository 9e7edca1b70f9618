"""NIQE, the no-reference "Natural Image Quality Evaluator" (Mittal, Soundararajan & Bovik, 2013).

Lower is better. Computed as MATLAB's `niqe` does, so numbers compare with published tables:
* the Y channel of MATLAB's `rgb2ycbcr` (8-bit, values 16..235) for RGB input;
* the image cut to whole 96x96 blocks (no overlap), the rest dropped;
* MSCN coefficients (I - mu) / (sigma + 1) with the 7x7 Gaussian window of the pristine model,
  replicate padding;
* per block 18 features: an AGGD fit of the coefficients (alpha, mean of the left/right scales)
  and, for the products of horizontal, vertical and both diagonal neighbours (circular shifts),
  AGGD fits (alpha, mean, left scale, right scale); alpha by grid search over 0.2:0.001:10;
* two scales, the second after MATLAB's antialiased bicubic imresize(., 0.5) (blocks 48x48);
* NIQE = sqrt((mu_p - mu_d)' pinv((C_p + C_d) / 2) (mu_p - mu_d)) against the pristine model
  (mu_p, C_p) shipped as `niqe_pris_params.npz` in ../shared/reference-data.

Check: baboon.png of Set14, first 492 columns (480x492), Y channel, no crop: 5.7300 here,
MATLAB R2021a 5.7296.
"""
import warnings
from pathlib import Path

import numpy as np
from scipy.ndimage import correlate
from scipy.special import gamma

from common.degradations import imresize
from common.paths import SHARED

PARAMS_FILE = "niqe_pris_params.npz"
BLOCK = 96
_ALPHAS = 0.2 + 0.001 * np.arange(9801)  # MATLAB's 0.2:0.001:10
_R_AGGD = gamma(2 / _ALPHAS) ** 2 / (gamma(1 / _ALPHAS) * gamma(3 / _ALPHAS))
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # MATLAB circshift offsets (rows, columns)


def default_params_path() -> Path:
    return SHARED / "reference-data" / PARAMS_FILE


def load_params(path=None) -> dict:
    """The pristine model: {"mu": (36,), "cov": (36, 36), "window": (7, 7)}."""
    path = Path(path) if path is not None else default_params_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"NIQE pristine parameters not found: {path} (pass params_path=..., the {PARAMS_FILE} file "
            "with mu_pris_param, cov_pris_param and gaussian_window)"
        )
    with np.load(path) as f:
        return {"mu": np.asarray(f["mu_pris_param"], np.float64).ravel(),
                "cov": np.asarray(f["cov_pris_param"], np.float64),
                "window": np.asarray(f["gaussian_window"], np.float64)}


def _luma_255(image) -> np.ndarray:
    """8-bit luminance (float64, integer values) of an image given as MATLAB's niqe would see it."""
    if isinstance(image, (str, Path)):
        from common.images import read_image

        image = read_image(image)
    image = np.asarray(image)
    if image.dtype.kind in "ui":
        image = image.astype(np.float64) / (65535.0 if image.dtype == np.uint16 else 255.0)
    image = image.astype(np.float64)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[2] == 3:
        y = image @ np.array([65.481, 128.553, 24.966]) + 16.0  # MATLAB rgb2ycbcr, uint8 result
    elif image.ndim == 2:
        y = image * 255.0
    else:
        raise ValueError(f"NIQE needs an (H, W), (H, W, 1) or (H, W, 3) image, got shape {image.shape}")
    return np.clip(np.round(y), 0, 255)


def _aggd_fit(samples):
    """Asymmetric generalised Gaussian fits of rows of `samples`: (alpha, beta_left, beta_right)."""
    left = np.where(samples < 0, samples, np.nan)
    right = np.where(samples > 0, samples, np.nan)
    left_std = np.sqrt(np.nanmean(left**2, axis=1))
    right_std = np.sqrt(np.nanmean(right**2, axis=1))
    gamma_hat = left_std / right_std
    r_hat = np.mean(np.abs(samples), axis=1) ** 2 / np.mean(samples**2, axis=1)
    r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    alpha = _ALPHAS[np.argmin((_R_AGGD[None, :] - r_norm[:, None]) ** 2, axis=1)]
    alpha = np.where(np.isnan(r_norm), np.nan, alpha)
    scale = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left_std * scale, right_std * scale


def _blocks(image, size):
    """(n_blocks, size, size) non-overlapping blocks, column-major block order as MATLAB."""
    h, w = image.shape
    b = image[: h - h % size, : w - w % size].reshape(h // size, size, w // size, size)
    return b.transpose(2, 0, 1, 3).reshape(-1, size, size)


def _block_features(mscn, size):
    """(n_blocks, 18) NIQE features of the MSCN coefficients cut into size x size blocks."""
    blocks = _blocks(mscn, size)
    n = len(blocks)
    alpha, bl, br = _aggd_fit(blocks.reshape(n, -1))
    feats = [alpha, (bl + br) / 2]
    for shift in _SHIFTS:
        pairs = blocks * np.roll(blocks, shift, axis=(1, 2))
        alpha, bl, br = _aggd_fit(pairs.reshape(n, -1))
        mean = (br - bl) * gamma(2 / alpha) / gamma(1 / alpha)
        feats += [alpha, mean, bl, br]
    return np.stack(feats, axis=1)


def _mscn(image, window):
    mu = correlate(image, window, mode="nearest")
    var = correlate(image * image, window, mode="nearest") - mu * mu
    return (image - mu) / (np.sqrt(np.abs(var)) + 1.0)


def niqe_features(luma, window) -> np.ndarray:
    """(n_blocks, 36) features of an 8-bit-range luminance image at scales 1 and 1/2."""
    h, w = luma.shape
    rows, cols = h // BLOCK, w // BLOCK
    if rows * cols < 2:
        raise ValueError(f"NIQE needs at least two {BLOCK}x{BLOCK} blocks; the image is {h}x{w}")
    image = luma[: rows * BLOCK, : cols * BLOCK]
    scale1 = _block_features(_mscn(image, window), BLOCK)
    half = imresize(image, 0.5)
    scale2 = _block_features(_mscn(half, window), BLOCK // 2)
    return np.concatenate([scale1, scale2], axis=1)


def niqe(image, crop_border=0, params_path=None) -> float:
    """NIQE of an image (lower is better).

    `image`: RGB (H, W, 3) or grey/Y (H, W[, 1]); uint8/uint16, or float in [0, 1] (the project's
    convention), or a file path. It is quantised to 8 bits, as MATLAB's uint8 path. RGB is reduced to
    MATLAB's YCbCr Y channel. `crop_border` pixels are removed from every side first.
    `params_path`: the pristine model (.npz); default ../shared/reference-data/niqe_pris_params.npz.
    """
    params = load_params(params_path)
    luma = _luma_255(image)
    if crop_border:
        luma = luma[crop_border:-crop_border, crop_border:-crop_border]
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # empty slices of flat blocks give NaN
        feats = niqe_features(luma, params["window"])
        mu = np.nanmean(feats, axis=0)
    complete = feats[~np.isnan(feats).any(axis=1)]
    if len(complete) < 2:
        raise ValueError("NIQE is undefined for this image: fewer than two blocks have finite features "
                         "(flat image?)")
    cov = np.cov(complete, rowvar=False)
    d = params["mu"] - mu
    return float(np.sqrt(d @ np.linalg.pinv((params["cov"] + cov) / 2) @ d))
