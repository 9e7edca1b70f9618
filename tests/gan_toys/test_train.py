import json

import numpy as np
import pytest

import common  # noqa: F401

from common.config_cli import config_from_args
from gan_toys import config as cfg
from gan_toys.train import build_parser, checkpoint_steps, main, parse_args


def test_checkpoint_steps():
    assert checkpoint_steps(2500) == [100, 1000, 2000, 2500]
    assert checkpoint_steps(50) == [50]


def test_config_overrides():
    c = cfg.make_config("mixture", {"steps": "7", "means": "1,2", "d_lr": "0.5"})
    assert c.steps == 7 and c.means == (1.0, 2.0) and c.d_lr == 0.5 and c.batch_size == 200
    with pytest.raises(ValueError):
        cfg.make_config("gaussian", {"no_such_setting": 1})


def _subparsers(parser):
    return next(a for a in parser._actions if a.dest == "experiment").choices


def test_every_flag_of_every_experiment_has_a_help_line():
    parser = build_parser()
    subs = _subparsers(parser)
    assert sorted(subs) == sorted(cfg.CONFIGS)
    for name, sub in subs.items():
        flags = {a.dest: a for a in sub._actions if a.option_strings}
        for field in cfg.CONFIGS[name].__dataclass_fields__:
            assert field in flags, (name, field)  # one flag per config field
        for action in flags.values():
            assert action.help and action.help.strip(), (name, action.option_strings)


def test_flags_replace_the_preset_and_set_is_a_deprecated_alias(capsys):
    args = parse_args(["mixture", "--means", "1", "2", "--d-lr", "0.5", "--steps", "7"])
    c = config_from_args(args, cfg.MixtureConfig, cfg.PRESETS["mixture"]["default"])
    assert c.means == (1.0, 2.0) and c.d_lr == 0.5 and c.steps == 7 and c.batch_size == 200
    assert parse_args(["sinusoids", "--no-batch-norm"]).batch_norm is False
    assert not hasattr(parse_args(["sinusoids"]), "steps")  # not given: the preset's value stays
    plain = cfg.make_config("sinusoids", {"seed": 1}, preset="plain")
    assert plain.mode_seeking == 0 and plain.ema == 0 and plain.seed == 1
    assert cfg.make_config("sinusoids").mode_seeking > 0
    with pytest.raises(SystemExit):
        parse_args(["sinusoids", "--preset", "no-such-preset"])
    assert main(["gaussian", "--set", "no_such_setting=1"]) == 2
    err = capsys.readouterr().err
    assert "deprecated" in err and "no setting 'no_such_setting'" in err


def test_gaussian_cli_writes_metrics_and_figures(tmp_path):
    out = tmp_path / "gaussian"
    assert main(["gaussian", "--steps", "60", "--seed", "3", "--out", str(out),
                 "--average-last", "20", "--eval-samples", "500"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("mean", "std", "d_real", "d_fake"):
        assert np.isfinite(metrics[key])
    assert metrics["steps"] == 60 and metrics["seed"] == 3
    assert 0 < metrics["d_real"] < 1 and 0 < metrics["d_fake"] < 1
    assert json.loads((out / "config.json").read_text())["average_last"] == 20
    assert metrics["cpu_seconds"] > 0


def test_deprecated_set_still_applies_and_flags_win(tmp_path):
    out = tmp_path / "gaussian"
    assert main(["gaussian", "--steps", "4", "--out", str(out), "--set", "average_last=3", "--set", "eval_samples=99",
                 "--eval-samples", "50", "--log-every", "2"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["average_last"] == 3 and config["eval_samples"] == 50 and config["preset"] == "default"
    for name in ("probabilities.png", "moments.png", "histogram.png", "losses.png"):
        assert (out / name).stat().st_size > 1000


def test_sinusoids_cli_reports_quality_per_checkpoint(tmp_path):
    out = tmp_path / "sinusoids"
    assert main(["sinusoids", "--steps", "3", "--out", str(out), "--eval-samples", "16",
                 "--batch-size", "4"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert [c["step"] for c in metrics["checkpoints"]] == [3]
    assert 0 <= metrics["good_share"] <= 1 and metrics["real"]["good_share"] == 1.0
    assert (out / "samples_step000003.png").exists() and (out / "quality.png").exists()


def test_mixture_cli_runs_both_generators(tmp_path):
    out = tmp_path / "mixture"
    assert main(["mixture", "--steps", "4", "--out", str(out), "--units", "16",
                 "--eval-samples", "300", "--log-every", "2", "--average-last", "2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for label in ("no_dropout", "dropout"):
        assert metrics[label]["wasserstein"] > 0 and 0 <= metrics[label]["share_upper"] <= 1
    assert (out / "histograms.png").exists() and (out / "wasserstein.png").exists()
