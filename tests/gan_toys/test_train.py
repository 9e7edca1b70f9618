import json

import numpy as np
import pytest

import common  # noqa: F401

from gan_toys import config as cfg
from gan_toys.train import checkpoint_steps, main


def test_checkpoint_steps():
    assert checkpoint_steps(2500) == [100, 1000, 2000, 2500]
    assert checkpoint_steps(50) == [50]


def test_config_overrides():
    c = cfg.make_config("mixture", {"steps": "7", "means": "1,2", "d_lr": "0.5"})
    assert c.steps == 7 and c.means == (1.0, 2.0) and c.d_lr == 0.5 and c.batch_size == 200
    with pytest.raises(ValueError):
        cfg.make_config("gaussian", {"no_such_setting": 1})


def test_gaussian_cli_writes_metrics_and_figures(tmp_path):
    out = tmp_path / "gaussian"
    assert main(["gaussian", "--steps", "60", "--seed", "3", "--out", str(out),
                 "--set", "average_last=20", "--set", "eval_samples=500"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("mean", "std", "d_real", "d_fake"):
        assert np.isfinite(metrics[key])
    assert metrics["steps"] == 60 and metrics["seed"] == 3
    assert 0 < metrics["d_real"] < 1 and 0 < metrics["d_fake"] < 1
    assert json.loads((out / "config.json").read_text())["average_last"] == 20
    for name in ("probabilities.png", "moments.png", "histogram.png", "losses.png"):
        assert (out / name).stat().st_size > 1000


def test_sinusoids_cli_reports_quality_per_checkpoint(tmp_path):
    out = tmp_path / "sinusoids"
    assert main(["sinusoids", "--steps", "3", "--out", str(out), "--set", "eval_samples=16",
                 "--set", "batch_size=4"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert [c["step"] for c in metrics["checkpoints"]] == [3]
    assert 0 <= metrics["good_share"] <= 1 and metrics["real"]["good_share"] == 1.0
    assert (out / "samples_step000003.png").exists() and (out / "quality.png").exists()


def test_mixture_cli_runs_both_generators(tmp_path):
    out = tmp_path / "mixture"
    assert main(["mixture", "--steps", "4", "--out", str(out), "--set", "units=16",
                 "--set", "eval_samples=300", "--set", "log_every=2", "--set", "average_last=2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for label in ("no_dropout", "dropout"):
        assert metrics[label]["wasserstein"] > 0 and 0 <= metrics[label]["share_upper"] <= 1
    assert (out / "histograms.png").exists() and (out / "wasserstein.png").exists()
