"""common.config_cli: config dataclass -> documented command-line flags, and every training CLI's
flags have a help line."""
import argparse
import dataclasses

import pytest

from common.config_cli import add_config_arguments, config_from_args, setting


@dataclasses.dataclass(frozen=True)
class Toy:
    size: int = setting(8, "side of the thing", unit="px")
    rate: float | None = setting(0.5, "how fast; none: never")
    names: tuple[str, ...] = setting(("a", "b"), "the names")
    milestones: tuple[int, ...] = setting((10,), "when to change", unit="steps", nargs="*")
    flip: bool = setting(True, "flip it")
    mode: str = setting("x", "the mode", choices=("x", "y"))
    extra: dict = dataclasses.field(default_factory=dict)


def toy_parser(shown=None):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Toy, shown=shown, shown_name="p" if shown else "", skip={"extra"})
    return parser


def test_flags_follow_the_field_types_and_only_given_flags_replace_the_preset():
    preset = Toy(size=4, rate=0.25, names=("c",), milestones=(5, 6), flip=True, mode="y")
    parser = toy_parser()
    assert config_from_args(parser.parse_args([]), Toy, preset) == preset  # nothing given: the preset
    args = parser.parse_args(["--size", "3", "--rate", "none", "--names", "p", "q", "--milestones",
                              "--no-flip", "--mode", "x"])
    config = config_from_args(args, Toy, preset)
    assert config == Toy(size=3, rate=None, names=("p", "q"), milestones=(), flip=False, mode="x")
    assert config_from_args(parser.parse_args(["--flip"]), Toy, Toy(flip=False)).flip is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.size = 1
    for bad in (["--size", "3.5"], ["--names"], ["--mode", "z"], ["--flip", "false"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_help_lines_show_the_presets_value_and_unit():
    text = " ".join(toy_parser(shown=Toy(size=4, rate=None, milestones=())).format_help().split())
    assert "side of the thing (default: 4 px)" in text
    assert "how fast; none: never (default: none)" in text
    assert "--flip, --no-flip" in text and "flip it (default: yes)" in text
    assert "when to change (default: (none))" in text
    assert "the defaults shown are preset p's" in text


def test_a_field_without_help_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Undocumented:
        steps: int = 3

    with pytest.raises(TypeError, match="Undocumented.steps has no help"):
        add_config_arguments(argparse.ArgumentParser(), Undocumented)
    with pytest.raises(TypeError, match="extra"):  # a dict has no flag form: it must be skipped
        add_config_arguments(argparse.ArgumentParser(), Toy)


@pytest.mark.parametrize("module", ["srcnn.train", "srgan.train", "esrgan.train", "esrgan.ablation"])
def test_every_flag_of_every_training_cli_has_a_help_line(module):
    import importlib

    parser = importlib.import_module(module).build_parser()
    options = [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
    assert len(options) > 20
    undocumented = [a.option_strings[0] for a in options if not (a.help or "").strip()]
    assert undocumented == []
    parser.format_help()  # every help line formats (no stray % in a help text)


def test_chapter_flags_replace_only_what_is_given_none_included():
    from dataclasses import replace

    from srcnn import train as srcnn_train
    from srcnn.config import PRESETS as SRCNN_PRESETS
    from srgan import train as srgan_train
    from srgan.config import PRESETS as SRGAN_PRESETS

    name, config = srgan_train.resolve_config(srgan_train.parse_args(
        ["--stage", "gan", "--content-loss", "mse", "--lr-decay-at", "none", "--no-batch-norm", "--val-samples"]))
    assert name == "srgan-mse" and SRGAN_PRESETS[name].lr_decay_at == 0.5
    assert config == replace(SRGAN_PRESETS[name], lr_decay_at=None, batch_norm=False, val_samples=())
    args = srcnn_train.parse_args(["--preset", "paper", "--stride", "none", "--scales", "2", "4"])
    assert srcnn_train.config_from_args(args, srcnn_train.SRCNNConfig, SRCNN_PRESETS["paper"]) == replace(
        SRCNN_PRESETS["paper"], stride=None, scales=(2, 4))
