"""Real-data samplers of the toy experiments, the sinusoid image generator and its fitting metric.

Every data set is endless and reproducible: batch i is drawn with the stateless seed (seed, i).
"""
import common  # noqa: F401  (quiet TensorFlow import)
import numpy as np
import tensorflow as tf


def _endless(batch_fn, seed: int, start: int = 0) -> tf.data.Dataset:
    """Dataset whose elements are batch_fn(stateless seed (seed, i)) for i = start, start + 1, ..."""
    seed = int(seed)
    return (tf.data.Dataset.counter(int(start))
            .map(lambda i: batch_fn(tf.stack([tf.constant(seed, tf.int64), i])))
            .prefetch(tf.data.AUTOTUNE))


# ---------------------------------------------------------------- 1-D distributions (§4.3, §4.4)

def sample_gaussian(n: int, mean: float, std: float, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(mean, std, size=(n, 1)).astype(np.float32)


def sample_mixture(n: int, means, stds, rng: np.random.Generator) -> np.ndarray:
    """Equal-weight mixture of normals."""
    k = rng.integers(len(means), size=n)
    return (np.asarray(means)[k] + np.asarray(stds)[k] * rng.standard_normal(n)).astype(np.float32)[:, None]


def gaussian_dataset(batch_size: int, mean: float, std: float, seed: int = 0, start: int = 0) -> tf.data.Dataset:
    """Endless batches (batch_size, 1) from N(mean, std^2), from batch number `start` on."""
    return _endless(lambda s: mean + std * tf.random.stateless_normal([batch_size, 1], s), seed, start)


def mixture_dataset(batch_size: int, means, stds, seed: int = 0, start: int = 0) -> tf.data.Dataset:
    """Endless batches (batch_size, 1) from the equal-weight mixture of N(means[i], stds[i]^2), from
    batch number `start` on."""
    means = tf.constant(means, tf.float32)
    stds = tf.constant(stds, tf.float32)

    def batch(s):
        k = tf.random.stateless_uniform([batch_size], s, 0, len(means), dtype=tf.int32)
        eps = tf.random.stateless_normal([batch_size], s + 1)
        return (tf.gather(means, k) + tf.gather(stds, k) * eps)[:, None]

    return _endless(batch, seed, start)


# ---------------------------------------------------------------- sinusoid images (§4.5)

def sinusoid_images(phases_deg, size: int = 50, cycles: float = 1.0, amplitude: float = 15.0,
                    half_width: float = 1.0) -> tf.Tensor:
    """Binary images (n, size, size, 1), float32 in {0, 1}, of y = c + A sin(2 pi f x / size + phase).

    Rasterisation: column x (pixel centres at x = 0..size-1) carries the curve at height
    y(x) = (size - 1)/2 - amplitude * sin(2 pi cycles x / size + phase) (rows grow downwards);
    pixel (r, x) is on when its centre is within `half_width` of the curve, the distance being
    the vertical offset |r - y(x)| divided by sqrt(1 + y'(x)^2) (the distance to the tangent),
    which gives a stroke of even width about 2 * half_width at any slope.
    """
    phase = tf.reshape(tf.cast(phases_deg, tf.float32), [-1, 1, 1]) * (np.pi / 180.0)
    x = tf.range(size, dtype=tf.float32)[None, None, :]
    r = tf.range(size, dtype=tf.float32)[None, :, None]
    w = 2.0 * np.pi * cycles / size
    y = (size - 1) / 2.0 - amplitude * tf.sin(w * x + phase)
    slope = amplitude * w * tf.cos(w * x + phase)
    distance = tf.abs(r - y) / tf.sqrt(1.0 + slope ** 2)
    return tf.cast(distance <= half_width, tf.float32)[..., None]


def sinusoid_dataset(batch_size: int, seed: int = 0, start: int = 0, **image_kw) -> tf.data.Dataset:
    """Endless batches of sinusoid images with phase uniform in [0, 360) degrees, from batch number
    `start` on."""
    return _endless(
        lambda s: sinusoid_images(tf.random.stateless_uniform([batch_size], s, 0.0, 360.0), **image_kw),
        seed, start)


def _dilate(images: np.ndarray) -> np.ndarray:
    """3x3 binary dilation of a stack (n, h, w) of booleans."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    h, w = images.shape[1:]
    out = np.zeros_like(images)
    for dr in range(3):
        for dc in range(3):
            out |= padded[:, dr:dr + h, dc:dc + w]
    return out


def phase_histogram(phases_deg, bins: int = 12) -> np.ndarray:
    """Counts of phases (degrees, any real number, taken modulo 360) in `bins` equal bins of [0, 360)."""
    phases = np.mod(np.asarray(phases_deg, np.float64), 360.0)
    return np.bincount(np.minimum((phases * bins / 360.0).astype(int), bins - 1), minlength=bins)


class SinusoidFit:
    """Fits the best sinusoid (of the data's family) to images and scores the fit.

    An image is binarised at 0.5; its score against a template (phase on a 1-degree grid) is the
    share of on-pixels, of the image and of the template together, that lie within one pixel
    (3x3 neighbourhood) of an on-pixel of the other:
        (|G within T+1px| + |T within G+1px|) / (|G| + |T|),
    1 for a real sinusoid, about 0.25 for uniform binary noise, 0 for a blank image. The best
    phase maximises the score (ties, within the tolerance, broken by the exact overlap).
    """

    def __init__(self, size: int = 50, cycles: float = 1.0, amplitude: float = 15.0,
                 half_width: float = 1.0, step_deg: float = 1.0):
        self.phases = np.arange(0.0, 360.0, step_deg)
        t = sinusoid_images(self.phases, size, cycles, amplitude, half_width).numpy()[..., 0] > 0.5
        self.templates = t.reshape(len(t), -1).astype(np.float32)  # (p, size*size)
        self.dilated = _dilate(t).reshape(len(t), -1).astype(np.float32)

    def fit(self, images) -> tuple[np.ndarray, np.ndarray]:
        """(score, phase in degrees) of the best-fitting sinusoid for each image (n, s, s[, 1])."""
        g = np.asarray(images).reshape(len(images), *self.templates.shape[1:2]) > 0.5
        side = int(round(np.sqrt(g.shape[1])))
        g_dil = _dilate(g.reshape(-1, side, side)).reshape(len(g), -1).astype(np.float32)
        g = g.astype(np.float32)
        matched_g = g @ self.dilated.T  # (n, p): image pixels explained by the template
        matched_t = g_dil @ self.templates.T  # (n, p): template pixels present in the image
        total = g.sum(1, keepdims=True) + self.templates.sum(1)[None, :]
        score = (matched_g + matched_t) / np.maximum(total, 1.0)
        exact = 2 * (g @ self.templates.T) / np.maximum(total, 1.0)  # Dice without tolerance
        best = (score + 1e-3 * exact).argmax(1)  # ties of the tolerant score: the closest phase
        return score[np.arange(len(g)), best], self.phases[best]

    def quality(self, images, threshold: float = 0.9, bins: int = 12) -> dict:
        """Summary: share of images fitted with score >= threshold, mean score, and how uniform
        the fitted phases of those good images are (normalised entropy of a `bins`-bin histogram:
        1 = uniform, 0 = a single phase bin; and the largest bin's share, 1/bins if uniform),
        and the same entropy over the fitted phases of all images (`phase_entropy_all`)."""
        score, phase = self.fit(images)
        good = score >= threshold
        hist = np.histogram(phase[good], bins=bins, range=(0.0, 360.0))[0].astype(np.float64)
        if hist.sum() > 0:
            p = hist / hist.sum()
            nz = p[p > 0]
            entropy = float(abs((nz * np.log(nz)).sum()) / np.log(bins))
            max_share = float(p.max())
        else:
            entropy, max_share = 0.0, 1.0
        hist_all = np.histogram(phase, bins=bins, range=(0.0, 360.0))[0] / max(len(phase), 1)
        nz_all = hist_all[hist_all > 0]
        return {"good_share": float(good.mean()), "mean_score": float(score.mean()),
                "median_score": float(np.median(score)),
                "phase_entropy": entropy, "phase_max_bin_share": max_share,
                "phase_bins_covered": int((hist > 0).sum()),
                "phase_entropy_all": float(abs((nz_all * np.log(nz_all)).sum()) / np.log(bins)),
                "phase_counts_all": phase_histogram(phase, bins).tolist(),
                "phase_counts_good": hist.astype(int).tolist(),
                "n": int(len(score))}
