"""Real-world degradations in TensorFlow, one example at a time, every draw from a stateless key.

* `RealESRGAN`: the second-order model of Wang et al. (Real-ESRGAN, ICCVW 2021): blur (isotropic /
  anisotropic / generalized / plateau Gaussian or sinc kernels, 7-21 px), random resize (up, down
  or keep; area, bilinear or bicubic), Gaussian or Poisson noise (colour or grey), JPEG; a second
  such stage (blur with probability 0.8); then back to the LR size with a final sinc filter and
  JPEG, in either order. Defaults: `options/train_realesrnet_x4plus.yml`.
* `BSRGAN`: Zhang et al.'s shuffled order (ICCV 2021, KAIR `degradation_bsrgan`): two blurs, a
  random intermediate downscale, the final downscale, Gaussian noise (colour, grey or channel-
  correlated) and JPEG in a random order (the intermediate downscale before the final one), an
  optional first halving at x4, and a last JPEG. The camera-sensor (ISP) noise step needs a
  trained ISP model and is left out.

A degradation is a frozen dataclass of its ranges (each a `setting` with help); `draw(key)` gives a
dict of scalar parameters (and sub-keys for the noise images) from a stateless key of shape [2],
`apply(hr, params, scale)` degrades one (H, W, 3) float32 image in [0, 1] whose sides are multiples
of `scale` to (H/scale, W/scale, 3), and `__call__(hr, key, scale)` does both. The result is
clipped to [0, 1] but not rounded: the data pipeline rounds it to 8 bits like a saved file.
Everything runs inside tf.data's map (dynamic shapes, no Python randomness), so a resumed run sees
the pairs an uninterrupted one would.

What differs from the reference code, and why: kernels and filters are ours in TF (reflect padding
as theirs, by index so it works on images smaller than the kernel); Poisson noise uses 256 levels
(their count of distinct values rounded up to a power of two, which is 256 for almost every
photo); TF's bicubic is Keys a = -0.5 (PyTorch's a = -0.75); BSRGAN's correlated noise uses a
proper covariance L^2 U^T D U (KAIR takes its elementwise absolute value, not always PSD), its
blur widths are floored at 0.1 px (KAIR can draw 0) and its nearest decimation is not shifted.
"""
import math
from dataclasses import dataclass, fields

import numpy as np

import common  # noqa: F401  (quiet TensorFlow import)
import tensorflow as tf

from common.config_cli import setting

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso", "sinc")
RESIZE_MODES = ("area", "bilinear", "bicubic")
RESIZE_DIRECTIONS = ("up", "down", "keep")
NOISE_KINDS = ("gaussian", "poisson", "correlated")
POISSON_LEVELS = 256.0


# --- primitives -----------------------------------------------------------------------------------


class _Draws:
    """Hands out the uniforms of one stateless key in a fixed order (one vector, then sub-keys)."""

    def __init__(self, key, count: int = 64):
        self.key = tf.cast(key, tf.int64)
        self.u = tf.random.stateless_uniform([count], seed=self.key, dtype=tf.float32)
        self.count, self.next = count, 0
        self.salt = 0

    def uniform(self, lo=0.0, hi=1.0):
        if self.next >= self.count:
            raise ValueError("more draws than reserved; raise _Draws' count")
        value = self.u[self.next]
        self.next += 1
        return lo + (hi - lo) * value

    def choice(self, probs):
        """An index drawn with probabilities `probs` (normalised)."""
        cum = np.cumsum(probs, dtype=np.float64) / float(np.sum(probs))
        u = self.uniform()
        return tf.minimum(tf.reduce_sum(tf.cast(u >= tf.constant(cum[:-1], tf.float32), tf.int32)), len(probs) - 1)

    def integer(self, lo: int, hi: int):
        """Uniform integer in [lo, hi]."""
        return tf.minimum(tf.cast(tf.floor(self.uniform(lo, hi + 1.0)), tf.int32), hi)

    def subkey(self):
        self.salt += 1
        return tf.random.experimental.stateless_fold_in(self.key, 0x7EA1 + self.salt)


def _grid(size: int):
    r = tf.range(size, dtype=tf.float32) - (size - 1) / 2
    yy, xx = tf.meshgrid(r, r, indexing="ij")
    return xx, yy


def _square_mask(size: int, kernel_size):
    """1 inside the central kernel_size x kernel_size square of a size x size grid, else 0."""
    xx, yy = _grid(size)
    half = tf.cast(kernel_size // 2, tf.float32)
    return tf.cast((tf.abs(xx) <= half) & (tf.abs(yy) <= half), tf.float32)


def gaussian_family_kernel(size: int, kernel_size, family, sigma_x, sigma_y, theta, beta):
    """A (size, size) kernel, nonzero on its central kernel_size square, summing to 1.

    family 0: Gaussian exp(-q/2); 1: generalized exp(-q^beta/2); 2: plateau 1/(q^beta + 1), where
    q = d^T Sigma^-1 d with Sigma = R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T."""
    xx, yy = _grid(size)
    c, s = tf.cos(theta), tf.sin(theta)
    u, v = c * xx + s * yy, -s * xx + c * yy
    q = (u / sigma_x) ** 2 + (v / sigma_y) ** 2
    shapes = tf.stack([tf.exp(-0.5 * q), tf.exp(-0.5 * tf.pow(q, beta)), 1.0 / (tf.pow(q, beta) + 1.0)])
    kernel = tf.gather(shapes, family) * _square_mask(size, kernel_size)
    return kernel / tf.reduce_sum(kernel)


def sinc_kernel(size: int, kernel_size, cutoff):
    """Circular low-pass (2-D sinc) kernel with cutoff `cutoff` (radians per pixel), summing to 1."""
    xx, yy = _grid(size)
    r = tf.sqrt(xx**2 + yy**2)
    safe = tf.where(r > 0, r, 1.0)
    kernel = cutoff * tf.math.special.bessel_j1(cutoff * safe) / (2 * math.pi * safe)
    kernel = tf.where(r > 0, kernel, cutoff**2 / (4 * math.pi)) * _square_mask(size, kernel_size)
    return kernel / tf.reduce_sum(kernel)


def pulse_kernel(size: int):
    """The identity filter."""
    return tf.constant(np.pad([[1.0]], size // 2), tf.float32)


def _reflect_indices(n, pad: int):
    """Source indices of a reflect-101 padding by `pad` of a length-n axis (any n >= 1, any pad)."""
    i = tf.range(-pad, n + pad)
    period = tf.maximum(2 * (n - 1), 1)
    m = tf.math.floormod(i, period)
    return tf.where(m < n, m, period - m)


def filter2d(image, kernel):
    """Correlate each channel of (H, W, C) `image` with a square (K, K) kernel, reflect-padded."""
    size = kernel.shape[0]
    pad = size // 2
    shape = tf.shape(image)
    padded = tf.gather(image, _reflect_indices(shape[0], pad), axis=0)
    padded = tf.gather(padded, _reflect_indices(shape[1], pad), axis=1)
    channels = image.shape[-1]
    weights = tf.tile(tf.reshape(kernel, [size, size, 1, 1]), [1, 1, channels, 1])
    return tf.nn.depthwise_conv2d(padded[None], weights, [1, 1, 1, 1], "VALID")[0]


def resize(image, size, mode):
    """Resize (H, W, C) to `size` with RESIZE_MODES[mode] (a tensor index), no antialiasing."""
    size = tf.maximum(tf.cast(size, tf.int32), 1)
    branches = [lambda m=m: tf.image.resize(image, size, method=m) for m in RESIZE_MODES]
    out = tf.switch_case(tf.cast(mode, tf.int32), branches)
    return tf.ensure_shape(out, [None, None, image.shape[-1]])


def jpeg(image, quality):
    return tf.image.adjust_jpeg_quality(tf.clip_by_value(image, 0.0, 1.0), tf.cast(quality, tf.int32))


def _grey(image):
    return tf.reduce_sum(image * tf.constant([0.299, 0.587, 0.114], image.dtype), axis=-1, keepdims=True)


def gaussian_noise(image, key, sigma, grey):
    """Add N(0, sigma^2) noise, the same on every channel when `grey` (a bool tensor)."""
    shape = tf.shape(image)
    noise = tf.random.stateless_normal(shape, seed=key) * sigma
    noise = tf.where(grey, tf.broadcast_to(noise[..., :1], shape), noise)
    return tf.clip_by_value(image + noise, 0.0, 1.0)


def poisson_noise(image, key, scale, grey):
    """Shot noise: Poisson(x * 256) / 256 - x, times `scale` (of the grey image when `grey`)."""
    base = tf.clip_by_value(tf.where(grey, tf.broadcast_to(_grey(image), tf.shape(image)), image), 0.0, 1.0)
    counts = tf.random.stateless_poisson(tf.shape(base), seed=key, lam=base * POISSON_LEVELS, dtype=tf.float32)
    noise = (counts / POISSON_LEVELS - base) * scale
    return tf.clip_by_value(image + noise, 0.0, 1.0)


def usm_sharpen(image, weight: float = 0.5, radius: int = 50, threshold: float = 10.0):
    """Real-ESRGAN's unsharp mask for HR targets: image + weight * (image - blur) where the residual
    exceeds threshold (8-bit levels), blended in through a blurred mask; Gaussian of (radius | 1) px
    with OpenCV's sigma for that size."""
    size = radius + 1 if radius % 2 == 0 else radius
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    kernel = gaussian_family_kernel(size, size, 0, sigma, sigma, 0.0, 1.0)
    residual = image - filter2d(image, kernel)
    mask = tf.cast(tf.abs(residual) * 255.0 > threshold, image.dtype)
    soft = filter2d(mask, kernel)
    sharp = tf.clip_by_value(image + weight * residual, 0.0, 1.0)
    return soft * sharp + (1.0 - soft) * image


# --- Real-ESRGAN ----------------------------------------------------------------------------------

_REAL_PROBS = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)


@dataclass(frozen=True)
class RealESRGAN:
    """Real-ESRGAN's second-order degradation; every range is [low, high]."""

    kernel_range: tuple[int, ...] = setting((7, 21), "blur kernel sizes drawn (odd sizes in this range)", unit="px")
    kernel_probs: tuple[float, ...] = setting(_REAL_PROBS, "stage 1 kernel type probabilities: iso, aniso, "
                                              "generalized iso/aniso, plateau iso/aniso")
    sinc_prob: float = setting(0.1, "stage 1: probability of a sinc kernel instead")
    blur_sigma: tuple[float, ...] = setting((0.2, 3.0), "stage 1 Gaussian widths", unit="px")
    betag_range: tuple[float, ...] = setting((0.5, 4.0), "stage 1 generalized-Gaussian shape beta")
    betap_range: tuple[float, ...] = setting((1.0, 2.0), "stage 1 plateau shape beta")
    resize_probs: tuple[float, ...] = setting((0.2, 0.7, 0.1), "stage 1 resize up / down / keep probabilities")
    resize_range: tuple[float, ...] = setting((0.15, 1.5), "stage 1 resize factors (down below 1, up above)")
    gaussian_noise_prob: float = setting(0.5, "stage 1: probability of Gaussian (else Poisson) noise")
    noise_range: tuple[float, ...] = setting((1.0, 30.0), "stage 1 Gaussian noise sigma", unit="8-bit levels")
    poisson_scale_range: tuple[float, ...] = setting((0.05, 3.0), "stage 1 Poisson noise scale")
    gray_noise_prob: float = setting(0.4, "stage 1: probability the noise is the same on all channels")
    jpeg_range: tuple[float, ...] = setting((30.0, 95.0), "stage 1 JPEG quality")
    second_blur_prob: float = setting(0.8, "stage 2: probability of a blur")
    kernel_probs2: tuple[float, ...] = setting(_REAL_PROBS, "stage 2 kernel type probabilities")
    sinc_prob2: float = setting(0.1, "stage 2: probability of a sinc kernel instead")
    blur_sigma2: tuple[float, ...] = setting((0.2, 1.5), "stage 2 Gaussian widths", unit="px")
    betag_range2: tuple[float, ...] = setting((0.5, 4.0), "stage 2 generalized-Gaussian shape beta")
    betap_range2: tuple[float, ...] = setting((1.0, 2.0), "stage 2 plateau shape beta")
    resize_probs2: tuple[float, ...] = setting((0.3, 0.4, 0.3), "stage 2 resize up / down / keep probabilities")
    resize_range2: tuple[float, ...] = setting((0.3, 1.2), "stage 2 resize factors, relative to the LR size")
    gaussian_noise_prob2: float = setting(0.5, "stage 2: probability of Gaussian (else Poisson) noise")
    noise_range2: tuple[float, ...] = setting((1.0, 25.0), "stage 2 Gaussian noise sigma", unit="8-bit levels")
    poisson_scale_range2: tuple[float, ...] = setting((0.05, 2.5), "stage 2 Poisson noise scale")
    gray_noise_prob2: float = setting(0.4, "stage 2: probability the noise is the same on all channels")
    jpeg_range2: tuple[float, ...] = setting((30.0, 95.0), "final JPEG quality")
    final_sinc_prob: float = setting(0.8, "probability of the final sinc filter")
    clean_prob: float = setting(0.0, "probability that an example gets the plain bicubic downscale instead "
                                "(0 in Real-ESRGAN; a share of clean inputs keeps a blind model sharp on them)")

    def __post_init__(self):
        check_ranges(self)
        if self.kernel_range[0] % 2 == 0 or self.kernel_range[1] % 2 == 0 or self.kernel_range[0] < 3:
            raise ValueError(f"kernel_range must hold odd sizes >= 3, not {self.kernel_range}")
        for name in ("kernel_probs", "kernel_probs2"):
            if len(getattr(self, name)) != 6:
                raise ValueError(f"{name} needs 6 probabilities (iso, aniso, generalized x2, plateau x2)")
        for name in ("resize_probs", "resize_probs2"):
            if len(getattr(self, name)) != 3:
                raise ValueError(f"{name} needs 3 probabilities (up, down, keep)")

    @property
    def size(self) -> int:
        """Every kernel is padded to the largest size (as Real-ESRGAN pads to 21)."""
        return int(self.kernel_range[1])

    def _kernel_params(self, d: _Draws, probs, sinc_prob, sigma, betag, betap, prefix: str) -> dict:
        lo, hi = self.kernel_range
        size = 2 * d.integer((lo - 1) // 2, (hi - 1) // 2) + 1
        kind = tf.where(d.uniform() < sinc_prob, 6, d.choice(probs))
        iso = tf.equal(kind % 2, 0)
        sx = d.uniform(*sigma)
        sy = tf.where(iso, sx, d.uniform(*sigma))
        theta = tf.where(iso, 0.0, d.uniform(-math.pi, math.pi))
        low_half = d.uniform() < 0.5
        bg = tf.where(low_half, d.uniform(betag[0], 1.0), d.uniform(1.0, betag[1]))
        bp = tf.where(low_half, d.uniform(betap[0], 1.0), d.uniform(1.0, betap[1]))
        beta = tf.where(kind >= 4, bp, tf.where(kind >= 2, bg, 1.0))
        cutoff = tf.where(size < 13, d.uniform(math.pi / 3, math.pi), d.uniform(math.pi / 5, math.pi))
        return {f"{prefix}type": kind, f"{prefix}size": size, f"{prefix}sigma_x": sx, f"{prefix}sigma_y": sy,
                f"{prefix}theta": theta, f"{prefix}beta": beta, f"{prefix}cutoff": cutoff}

    def _kernel(self, p: dict, prefix: str):
        kind, size = p[f"{prefix}type"], p[f"{prefix}size"]
        family = tf.minimum(kind // 2, 2)
        return tf.cond(
            tf.equal(kind, 6),
            lambda: sinc_kernel(self.size, size, p[f"{prefix}cutoff"]),
            lambda: gaussian_family_kernel(self.size, size, family, p[f"{prefix}sigma_x"], p[f"{prefix}sigma_y"],
                                           p[f"{prefix}theta"], p[f"{prefix}beta"]))

    def _resize_params(self, d: _Draws, probs, factors, prefix: str) -> dict:
        direction = d.choice(probs)
        up, down = d.uniform(1.0, factors[1]), d.uniform(factors[0], 1.0)
        factor = tf.gather(tf.stack([up, down, 1.0]), direction)
        return {f"{prefix}direction": direction, f"{prefix}factor": factor, f"{prefix}mode": d.choice((1, 1, 1))}

    def _noise_params(self, d: _Draws, gaussian_prob, sigma, poisson, grey_prob, prefix: str) -> dict:
        gaussian = d.uniform() < gaussian_prob
        return {f"{prefix}noise": tf.where(gaussian, 0, 1), f"{prefix}sigma": d.uniform(*sigma) / 255.0,
                f"{prefix}poisson_scale": d.uniform(*poisson), f"{prefix}grey": d.uniform() < grey_prob,
                f"{prefix}key": d.subkey()}

    def draw(self, key) -> dict:
        d = _Draws(key)
        p = self._kernel_params(d, self.kernel_probs, self.sinc_prob, self.blur_sigma, self.betag_range,
                                self.betap_range, "blur1_")
        p.update(self._resize_params(d, self.resize_probs, self.resize_range, "resize1_"))
        p.update(self._noise_params(d, self.gaussian_noise_prob, self.noise_range, self.poisson_scale_range,
                                    self.gray_noise_prob, "noise1_"))
        p["jpeg1"] = d.uniform(*self.jpeg_range)
        p["blur2_on"] = d.uniform() < self.second_blur_prob
        p.update(self._kernel_params(d, self.kernel_probs2, self.sinc_prob2, self.blur_sigma2, self.betag_range2,
                                     self.betap_range2, "blur2_"))
        p.update(self._resize_params(d, self.resize_probs2, self.resize_range2, "resize2_"))
        p.update(self._noise_params(d, self.gaussian_noise_prob2, self.noise_range2, self.poisson_scale_range2,
                                    self.gray_noise_prob2, "noise2_"))
        lo, hi = self.kernel_range
        p["final_sinc"] = d.uniform() < self.final_sinc_prob
        p["final_size"] = 2 * d.integer((lo - 1) // 2, (hi - 1) // 2) + 1
        p["final_cutoff"] = d.uniform(math.pi / 3, math.pi)
        p["final_mode"] = d.choice((1, 1, 1))
        p["jpeg2"] = d.uniform(*self.jpeg_range2)
        p["jpeg_first"] = d.uniform() < 0.5
        p["clean"] = d.uniform() < self.clean_prob
        return p

    @staticmethod
    def _noise(x, p: dict, prefix: str):
        grey = p[f"{prefix}grey"]
        return tf.cond(tf.equal(p[f"{prefix}noise"], 0),
                       lambda: gaussian_noise(x, p[f"{prefix}key"], p[f"{prefix}sigma"], grey),
                       lambda: poisson_noise(x, p[f"{prefix}key"], p[f"{prefix}poisson_scale"], grey))

    def apply(self, hr, p: dict, scale: int):
        hr = tf.convert_to_tensor(hr, tf.float32)
        return tf.cond(p["clean"], lambda: _bicubic(hr, scale), lambda: self._second_order(hr, p, scale))

    def _second_order(self, hr, p: dict, scale: int):
        h, w = tf.shape(hr)[0], tf.shape(hr)[1]
        hw = tf.cast(tf.stack([h, w]), tf.float32)
        x = filter2d(hr, self._kernel(p, "blur1_"))
        x = resize(x, tf.floor(hw * p["resize1_factor"]), p["resize1_mode"])
        x = self._noise(x, p, "noise1_")
        x = jpeg(x, p["jpeg1"])
        x = tf.cond(p["blur2_on"], lambda: filter2d(x, self._kernel(p, "blur2_")), lambda: x)
        x = resize(x, tf.floor(hw / scale * p["resize2_factor"]), p["resize2_mode"])
        x = self._noise(x, p, "noise2_")
        target = tf.stack([h // scale, w // scale])
        final = tf.cond(p["final_sinc"], lambda: sinc_kernel(self.size, p["final_size"], p["final_cutoff"]),
                        lambda: pulse_kernel(self.size))

        def back(y):
            return filter2d(resize(y, target, p["final_mode"]), final)

        x = tf.cond(p["jpeg_first"], lambda: back(jpeg(x, p["jpeg2"])), lambda: jpeg(back(x), p["jpeg2"]))
        return tf.clip_by_value(tf.ensure_shape(x, [None, None, 3]), 0.0, 1.0)

    def __call__(self, hr, key, scale: int):
        return self.apply(hr, self.draw(key), scale)


# --- BSRGAN ---------------------------------------------------------------------------------------

_BSR_STEPS = ("blur", "blur", "downsample", "final_downsample", "noise", "jpeg")
_BSR_KERNEL = 25  # KAIR's largest blur kernel (2 * 11 + 3)


@dataclass(frozen=True)
class BSRGAN:
    """BSRGAN's degradation: its steps in a random order (KAIR `degradation_bsrgan`)."""

    halve_prob: float = setting(0.25, "x4 only: probability of a first halving (bicubic / random mode)")
    aniso_prob: float = setting(0.5, "probability a blur is anisotropic")
    kernel_range: tuple[int, ...] = setting((7, 25), "blur kernel sizes drawn (odd sizes in this range)", unit="px")
    resize_down_prob: float = setting(0.75, "intermediate downscale: probability of a resize (else Gaussian blur "
                                      "and nearest decimation)")
    noise_range: tuple[float, ...] = setting((2.0, 25.0), "Gaussian noise level", unit="8-bit levels")
    noise_probs: tuple[float, ...] = setting((0.4, 0.4, 0.2), "noise colour / grey / channel-correlated "
                                             "probabilities")
    jpeg_prob: float = setting(0.9, "probability of the JPEG step inside the shuffled order")
    jpeg_range: tuple[float, ...] = setting((30.0, 95.0), "JPEG quality (both JPEG steps)")
    clean_prob: float = setting(0.0, "probability that an example gets the plain bicubic downscale instead "
                                "(0 in BSRGAN)")

    def __post_init__(self):
        check_ranges(self)
        if self.kernel_range[0] % 2 == 0 or self.kernel_range[1] % 2 == 0 or self.kernel_range[1] > _BSR_KERNEL:
            raise ValueError(f"kernel_range must hold odd sizes up to {_BSR_KERNEL}, not {self.kernel_range}")
        if len(self.noise_probs) != 3:
            raise ValueError("noise_probs needs 3 probabilities (colour, grey, correlated)")

    def _blur_params(self, d: _Draws, prefix: str) -> dict:
        lo, hi = self.kernel_range
        return {f"{prefix}aniso": d.uniform() < self.aniso_prob,
                f"{prefix}size": 2 * d.integer((lo - 1) // 2, (hi - 1) // 2) + 1,
                f"{prefix}l1": d.uniform(), f"{prefix}l2": d.uniform(), f"{prefix}theta": d.uniform(0.0, math.pi),
                f"{prefix}sigma": d.uniform()}

    def draw(self, key) -> dict:
        d = _Draws(key)
        order = tf.random.experimental.stateless_shuffle(tf.range(len(_BSR_STEPS)), seed=d.subkey())
        # the intermediate downscale comes before the final one (KAIR swaps them otherwise)
        i2, i3 = tf.argmax(tf.equal(order, 2)), tf.argmax(tf.equal(order, 3))
        swap = i2 > i3
        order = tf.where(swap & tf.equal(order, 2), 3, tf.where(swap & tf.equal(order, 3), 2, order))
        p = {"order": order, "halve": d.uniform() < self.halve_prob, "halve_mode": d.choice((1, 1, 1))}
        p.update(self._blur_params(d, "blur1_"))
        p.update(self._blur_params(d, "blur2_"))
        p.update({"down_resize": d.uniform() < self.resize_down_prob, "down_factor_u": d.uniform(),
                  "down_mode": d.choice((1, 1, 1)), "down_sigma_u": d.uniform(), "final_mode": d.choice((1, 1, 1)),
                  "noise_level": tf.cast(d.integer(int(self.noise_range[0]), int(self.noise_range[1])), tf.float32),
                  "noise_kind": d.choice(self.noise_probs), "noise_key": d.subkey(), "noise_basis_key": d.subkey(),
                  "jpeg_on": d.uniform() < self.jpeg_prob, "jpeg1": d.uniform(*self.jpeg_range),
                  "jpeg2": d.uniform(*self.jpeg_range)})
        p["clean"] = d.uniform() < self.clean_prob
        return p

    def _blur(self, x, p: dict, prefix: str, sf):
        wide, narrow = 4.0 + sf, 2.0 + 0.2 * sf  # KAIR: anisotropic variances up to 4+sf, iso sigma up to 2+0.2sf
        aniso = p[f"{prefix}aniso"]
        sx = tf.where(aniso, tf.sqrt(tf.maximum(wide * p[f"{prefix}l1"], 0.01)),
                      tf.maximum(narrow * p[f"{prefix}sigma"], 0.1))
        sy = tf.where(aniso, tf.sqrt(tf.maximum(wide * p[f"{prefix}l2"], 0.01)), sx)
        theta = tf.where(aniso, p[f"{prefix}theta"], 0.0)
        kernel = gaussian_family_kernel(_BSR_KERNEL, p[f"{prefix}size"], 0, sx, sy, theta, 1.0)
        return filter2d(x, kernel)

    def _downsample(self, x, p: dict, sf):
        hw = tf.cast(tf.shape(x)[:2], tf.float32)

        def by_resize():
            factor = 1.0 + (2.0 * sf - 1.0) * p["down_factor_u"]
            return resize(x, tf.floor(hw / factor), p["down_mode"])

        def by_decimation():
            sigma = 0.1 + (0.6 * sf - 0.1) * p["down_sigma_u"]
            kernel = gaussian_family_kernel(_BSR_KERNEL, _BSR_KERNEL, 0, sigma, sigma, 0.0, 1.0)
            step = tf.cast(sf, tf.int32)
            return filter2d(x, kernel)[::step, ::step]

        out = tf.cond(p["down_resize"], by_resize, by_decimation)
        return tf.clip_by_value(tf.ensure_shape(out, [None, None, 3]), 0.0, 1.0)

    def _noise(self, x, p: dict):
        sigma = p["noise_level"] / 255.0
        shape = tf.shape(x)
        white = tf.random.stateless_normal(shape, seed=p["noise_key"])
        basis, _ = tf.linalg.qr(tf.random.stateless_uniform([3, 3], seed=p["noise_basis_key"]))
        weights = tf.random.stateless_uniform([3], seed=tf.random.experimental.stateless_fold_in(
            p["noise_basis_key"], 1))
        # correlated: covariance sigma^2 U^T D U, sampled as white @ (U^T sqrt(D) U)
        mix = tf.transpose(basis) @ tf.linalg.diag(tf.sqrt(weights)) @ basis
        noise = tf.switch_case(p["noise_kind"], [
            lambda: white,
            lambda: tf.broadcast_to(white[..., :1], shape),
            lambda: tf.reshape(tf.reshape(white, [-1, 3]) @ mix, shape)])
        return tf.clip_by_value(x + sigma * noise, 0.0, 1.0)

    def apply(self, hr, p: dict, scale: int):
        hr = tf.convert_to_tensor(hr, tf.float32)
        return tf.cond(p["clean"], lambda: _bicubic(hr, scale), lambda: self._shuffled(hr, p, scale))

    def _shuffled(self, hr, p: dict, scale: int):
        h, w = tf.shape(hr)[0], tf.shape(hr)[1]
        target = tf.stack([h // scale, w // scale])
        halve = p["halve"] & tf.constant(scale == 4)
        x = tf.cond(halve, lambda: tf.clip_by_value(resize(hr, tf.stack([h // 2, w // 2]), p["halve_mode"]), 0.0, 1.0),
                    lambda: hr)
        sf = tf.where(halve, 2.0, float(scale))
        for slot in range(len(_BSR_STEPS)):
            step = p["order"][slot]
            x = tf.switch_case(step, [
                lambda x=x: self._blur(x, p, "blur1_", sf),
                lambda x=x: self._blur(x, p, "blur2_", sf),
                lambda x=x: self._downsample(x, p, sf),
                lambda x=x: tf.clip_by_value(resize(x, target, p["final_mode"]), 0.0, 1.0),
                lambda x=x: self._noise(x, p),
                lambda x=x: tf.cond(p["jpeg_on"], lambda: jpeg(x, p["jpeg1"]), lambda: x)])
            x = tf.ensure_shape(x, [None, None, 3])
        # the intermediate downscale may leave a size off by a pixel from the target: resize exactly
        x = tf.cond(tf.reduce_all(tf.equal(tf.shape(x)[:2], target)), lambda: x,
                    lambda: resize(x, target, p["final_mode"]))
        return tf.clip_by_value(jpeg(x, p["jpeg2"]), 0.0, 1.0)

    def __call__(self, hr, key, scale: int):
        return self.apply(hr, self.draw(key), scale)


def _bicubic(hr, scale: int):
    from common.degradations import degrade_tf

    return tf.clip_by_value(tf.ensure_shape(degrade_tf(hr, scale, "bicubic"), [None, None, 3]), 0.0, 1.0)


def check_ranges(config) -> None:
    """Probabilities in [0, 1]; two-value ranges ordered; raises ValueError naming the field."""
    for f in fields(config):
        value = getattr(config, f.name)
        if "_prob" in f.name and "_probs" not in f.name and not 0.0 <= value <= 1.0:
            raise ValueError(f"{f.name} must be a probability in [0, 1], not {value}")
        if "_probs" in f.name:
            if any(v < 0 for v in value) or sum(value) <= 0:
                raise ValueError(f"{f.name} must be non-negative with a positive sum, not {value}")
        elif isinstance(value, tuple):
            if len(value) != 2 or value[0] > value[1]:
                raise ValueError(f"{f.name} must be two values low <= high, not {value}")
            if value[0] < 0:
                raise ValueError(f"{f.name} must not be negative, not {value}")
