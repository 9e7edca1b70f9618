import numpy as np

import common  # noqa: F401

from gan_toys import data


def test_sinusoid_images_are_binary_connected_curves():
    images = data.sinusoid_images([0.0, 90.0, 200.0]).numpy()
    assert images.shape == (3, 50, 50, 1) and images.dtype == np.float32
    assert set(np.unique(images)) == {0.0, 1.0}
    for image in images[..., 0]:
        on_rows = [np.flatnonzero(image[:, x]) for x in range(50)]
        assert all(len(r) >= 1 for r in on_rows)  # the curve crosses every column
        assert 0.02 < image.mean() < 0.15  # a thin stroke, not a filled area
        span = np.concatenate(on_rows)
        assert span.min() <= 24.5 - 13 and span.max() >= 24.5 + 13  # amplitude 15 px about the centre


def test_sinusoid_phase_shifts_the_curve():
    a, b, c = data.sinusoid_images([10.0, 370.0, 190.0]).numpy()
    assert np.array_equal(a, b)  # period 360 degrees
    assert np.array_equal(a, c[::-1]) or (a != c).sum() > 50  # half a period: the mirrored curve
    # phase 90: the curve starts at its top (rows grow downwards)
    top = data.sinusoid_images([90.0]).numpy()[0, :, 0, 0]
    assert np.flatnonzero(top).mean() < 12


def test_sinusoid_dataset_is_endless_reproducible_and_random():
    first = [b.numpy() for b in data.sinusoid_dataset(4, seed=3).take(3)]
    again = [b.numpy() for b in data.sinusoid_dataset(4, seed=3).take(3)]
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not np.array_equal(first[0], first[1])
    assert first[0].shape == (4, 50, 50, 1)


def test_fit_metric_recovers_phase_and_separates_sinusoids_from_noise():
    fit = data.SinusoidFit()
    phases = np.array([3.0, 77.0, 181.0, 300.0])
    score, found = fit.fit(data.sinusoid_images(phases).numpy())
    assert np.allclose(score, 1.0)
    assert np.all(np.abs((found - phases + 180) % 360 - 180) <= 3)

    rng = np.random.default_rng(0)
    noise = rng.random((64, 50, 50, 1))
    sparse = (rng.random((64, 50, 50, 1)) < 0.08).astype(np.float32)  # as many on-pixels as a curve
    blank = np.zeros((4, 50, 50, 1))
    for images in (noise, sparse, blank):
        assert fit.fit(images)[0].max() < 0.6
    # a real curve with a few flipped pixels still fits
    noisy_curve = data.sinusoid_images([45.0]).numpy()
    noisy_curve[0, rng.integers(50, size=10), rng.integers(50, size=10), 0] = 1.0
    assert fit.fit(noisy_curve)[0][0] > 0.9


def test_quality_summary_phase_uniformity():
    fit = data.SinusoidFit()
    uniform = data.sinusoid_images(np.linspace(0, 360, 120, endpoint=False)).numpy()
    collapsed = data.sinusoid_images(np.full(120, 42.0)).numpy()
    q_uniform, q_collapsed = fit.quality(uniform), fit.quality(collapsed)
    assert q_uniform["good_share"] == 1.0 and q_collapsed["good_share"] == 1.0
    assert q_uniform["phase_entropy"] > 0.99 and q_uniform["phase_bins_covered"] == 12
    assert q_collapsed["phase_entropy"] == 0.0 and q_collapsed["phase_max_bin_share"] == 1.0
    assert fit.quality(np.zeros((5, 50, 50, 1)))["good_share"] == 0.0


def test_one_dimensional_samplers():
    g = next(iter(data.gaussian_dataset(20000, 2.5, 3.25, seed=1))).numpy()
    assert g.shape == (20000, 1)
    assert abs(g.mean() - 2.5) < 0.1 and abs(g.std() - 3.25) < 0.1
    m = next(iter(data.mixture_dataset(20000, (5.5, -3.2), (3.25, 1.75), seed=1))).numpy().ravel()
    upper = m > 1.15
    assert abs(upper.mean() - 0.458) < 0.02  # P(nearer 5.5 than -3.2) of the mixture
    assert abs(np.median(m[m < -1]) + 3.2) < 0.2
    n = data.sample_mixture(20000, (5.5, -3.2), (3.25, 1.75), np.random.default_rng(0)).ravel()
    assert abs(np.mean(n > 1.15) - 0.458) < 0.02
