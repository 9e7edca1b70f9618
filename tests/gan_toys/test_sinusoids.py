"""The sinusoid experiment's outputs: phase histogram, fitted phases, samples.npy and its figures."""
import json

import numpy as np

import common  # noqa: F401

from gan_toys import data
from gan_toys.config import SinusoidConfig
from gan_toys.train import main, sample_figure_steps


def test_phase_histogram_bins_wrap_around():
    counts = data.phase_histogram([0.0, 29.9, 30.0, 359.9, 360.0, -10.0, 725.0], bins=12)
    assert counts.tolist() == [4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]  # 360 -> 0, -10 -> 350, 725 -> 5


def test_fitted_phases_of_real_sinusoids_fill_every_bin_evenly():
    fit = data.SinusoidFit()
    # 4 per 30-degree bin, at least 7 degrees from its edges (the fit finds the phase within 3)
    phases = (15.0 + 30.0 * np.arange(12)[:, None] + np.array([-8.0, -2.5, 3.0, 8.0])).ravel()
    q = fit.quality(data.sinusoid_images(phases).numpy())
    assert q["good_share"] == 1.0 and q["mean_score"] > 0.99
    assert q["phase_counts_all"] == [4] * 12 and q["phase_counts_good"] == [4] * 12

    score, found = fit.fit(data.sinusoid_images(phases).numpy())
    assert np.all(np.abs((found - phases + 180) % 360 - 180) <= 3)


def test_noise_fits_badly_and_counts_as_no_good_phase():
    fit = data.SinusoidFit()
    noise = (np.random.default_rng(1).random((24, 50, 50, 1)) < 0.08).astype(np.float32)
    q = fit.quality(noise)
    assert q["good_share"] == 0.0 and q["mean_score"] < 0.5
    assert sum(q["phase_counts_all"]) == 24 and sum(q["phase_counts_good"]) == 0


def test_sample_figure_shows_100_1000_2000_and_the_last_step():
    assert sample_figure_steps([100, 1000, 2000, 3000, 4000, 5000, 6000]) == [100, 1000, 2000, 6000]
    assert sample_figure_steps([100, 1000, 1500]) == [100, 1000, 1500]
    assert sample_figure_steps([30]) == [30]


def test_cli_writes_samples_npy_phase_histogram_and_figures(tmp_path):
    out = tmp_path / "sinusoids"
    assert main(["sinusoids", "--steps", "4", "--out", str(out), "--eval-samples", "24",
                 "--batch-size", "4", "--g-filters", "4", "--d-filters", "4"]) == 0
    samples = np.load(out / "samples.npy")
    assert samples.shape == (24, 50, 50) and samples.dtype == np.float32
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    metrics = json.loads((out / "metrics.json").read_text())
    counts = metrics["phase_counts"]
    assert len(counts) == 12 and sum(counts) == 24 and metrics["phase_min_bin"] == min(counts)
    assert metrics["phase_bins_ok"] == (min(counts) >= 24 / 12 / 3)
    assert metrics["passed"] == (metrics["good_share"] >= 0.8 and metrics["phase_bins_ok"])
    # the defaults sample from the average of G's weights; the last weights are scored too
    assert json.loads((out / "config.json").read_text())["ema"] > 0
    assert all(0 <= c["last_weights"]["good_share"] <= 1 for c in metrics["checkpoints"])
    # the saved samples are the images the final metrics were computed on
    again = data.SinusoidFit(half_width=SinusoidConfig().half_width).quality(samples[..., None])
    assert again["phase_counts_all"] == counts and abs(again["good_share"] - metrics["good_share"]) < 1e-9
    for name in ("samples.png", "phase_histogram.png", "samples_step000004.png", "quality.png"):
        assert (out / name).stat().st_size > 1000
    assert not list(out.glob("*.tmp"))
