"""Every training and evaluation command checks its settings before it builds or loads anything, and
reports a bad one as one line, "error: --flag: reason", with exit code 2 (issue 34, item 7).

Each command's main(argv) runs in this process with a few bad settings or combinations; the
functions that would build a model, load a checkpoint or train are replaced by a tripwire, so a
check that came too late (or not at all) fails the test instead of training."""
import importlib

import numpy as np
import pytest

from common.images import write_image


class PastTheChecks(Exception):
    """A command went on to build, load or train with a bad setting."""


# the functions each command calls once its settings are checked
TRIPWIRES = {
    "srcnn.train": ("train",),
    "srgan.train": ("train",),
    "esrgan.train": ("train",),
    "esrgan.ablation": ("run_ablation",),
    "gan_toys.train": ("run",),
    "common.evaluate": ("model_upscaler", "run"),
    "srcnn.evaluate": ("evaluate", "table"),
    "srgan.evaluate": ("model_upscaler", "table_rows"),
    "esrgan.evaluate": ("Upscaler", "evaluate"),
    "esrgan.sweep": ("sweep",),
    "esrgan.interpolate": ("interpolate_checkpoints",),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{"images": a folder of two small images, "empty": a folder without any, "model": a checkpoint
    file (never loaded), "missing": a path that does not exist, "file": a plain file}."""
    root = tmp_path_factory.mktemp("settings")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        write_image(images / f"{name}.png", rng.random((48, 48, 3)).astype(np.float32))
    (root / "empty").mkdir()
    (root / "model.h5").write_bytes(b"never loaded")
    (root / "plain.txt").write_text("a file")
    return {"images": str(images), "empty": str(root / "empty"), "model": str(root / "model.h5"),
            "missing": str(root / "missing.h5"), "file": str(root / "plain.txt"), "root": str(root)}


def _data(f):
    return ["--train-data", f["images"], "--val-data", f["images"]]


# (command, argv given the files, the flag the error line must name)
CASES = [
    # issue 34's example: a guarded gan stage whose checkpoints are not validated steps
    ("srgan.train", lambda f: ["--stage", "gan", "--checkpoint-every", "10", "--validate-every", "1000",
                               "--init", "none", *_data(f)], "--checkpoint-every"),
    ("srgan.train", lambda f: ["--hr-patch", "30", *_data(f)], "--hr-patch"),
    ("srgan.train", lambda f: ["--batch-size", "0", *_data(f)], "--batch-size"),
    ("srgan.train", lambda f: ["--adversarial-weight", "-1", *_data(f)], "--adversarial-weight"),
    ("srgan.train", lambda f: ["--lr", "nan", *_data(f)], "--lr"),
    ("srgan.train", lambda f: ["--steps", "many", *_data(f)], "--steps"),
    ("srgan.train", lambda f: ["--scale", "5", "--hr-patch", "80", *_data(f)], "--scale"),
    ("srgan.train", lambda f: ["--train-data", f["images"], "--val-data", "NoSuchSet"], "--val-data"),
    ("srgan.train", lambda f: ["--stage", "gan", "--init", f["missing"], *_data(f)], "--init"),
    ("srgan.train", lambda f: ["--stage", "pretrain", "--content-loss", "vgg54", "--perceptual", "disc-features",
                               *_data(f)], "--perceptual"),
    ("esrgan.train", lambda f: ["--preset", "cpu", "--stage", "gan", "--init", "none", *_data(f)],
     "--checkpoint-every"),
    ("esrgan.train", lambda f: ["--scale", "3", "--hr-patch", "96", *_data(f)], "--scale"),
    ("esrgan.train", lambda f: ["--lr-milestones", "5", "3", *_data(f)], "--lr-milestones"),
    ("esrgan.train", lambda f: ["--stage", "gan", "--perceptual", "disc-features", "--feature-layers", "nope",
                                "--init", "none", *_data(f)], "--feature-layers"),
    ("esrgan.train", lambda f: ["--ema-decay", "1", *_data(f)], "--ema-decay"),
    ("esrgan.train", lambda f: ["--run-dir", f["file"], *_data(f)], "--run-dir"),
    ("esrgan.train", lambda f: ["--preset", "tiny", "--stage", "gan", "--init", "none", "--init-discriminator",
                                f["missing"], *_data(f)], "--init-discriminator"),
    ("esrgan.train", lambda f: ["--train-data", f["images"], "nowhere", "--val-data", f["images"]], "--train-data"),
    ("esrgan.train", lambda f: ["--degradation", "realesrgan", "--degradation-options", "bogus=1", *_data(f)],
     "--degradation-options"),
    ("srcnn.train", lambda f: ["--steps", "0", *_data(f)], "--steps"),
    ("srcnn.train", lambda f: ["--patch", "10", *_data(f)], "--patch"),
    ("srcnn.train", lambda f: ["--lr", "-0.1", *_data(f)], "--lr"),
    ("srcnn.train", lambda f: ["--optimizer", "rmsprop", *_data(f)], "--optimizer"),
    ("srcnn.train", lambda f: ["--revive", *_data(f)], "--revive"),
    ("srcnn.train", lambda f: ["--train-data", "NoSuchSet", "--val-data", f["images"]], "--train-data"),
    ("srcnn.train", lambda f: ["--scales", "2", "3", "--export", "one.h5", *_data(f)], "--export"),
    ("esrgan.ablation", lambda f: ["--hr-patch", "48", "--train-data", f["images"], "--data", f["images"]],
     "--hr-patch"),
    ("esrgan.ablation", lambda f: ["--columns", "9", "--train-data", f["images"], "--data", f["images"]],
     "--columns"),
    ("esrgan.ablation", lambda f: ["--scale", "3", "--hr-patch", "96", "--train-data", f["images"],
                                   "--data", f["images"]], "--scale"),
    ("esrgan.ablation", lambda f: ["--train-data", f["images"], "--data", f["empty"] + "/nowhere"], "--data"),
    ("esrgan.ablation", lambda f: ["--steps", "-1", "--train-data", f["images"], "--data", f["images"]], "--steps"),
    ("gan_toys.train", lambda f: ["mixture", "--means", "1", "2", "3"], "--means"),
    ("gan_toys.train", lambda f: ["gaussian", "--steps", "0"], "--steps"),
    ("gan_toys.train", lambda f: ["sinusoids", "--size", "64"], "--size"),
    ("gan_toys.train", lambda f: ["sinusoids", "--real-label", "0"], "--real-label"),
    ("gan_toys.train", lambda f: ["gaussian", "--run-dir", f["root"] + "/toy", "--checkpoint-every", "0"],
     "--checkpoint-every"),
    ("common.evaluate", lambda f: ["--data", f["images"], "--scale", "0"], "--scale"),
    ("common.evaluate", lambda f: ["--data", f["images"]], "--scale"),
    ("common.evaluate", lambda f: ["--data", f["missing"], "--scale", "4"], "--data"),
    ("common.evaluate", lambda f: ["--data", f["empty"], "--scale", "4"], "--data"),
    ("common.evaluate", lambda f: ["--data", f["images"], "--scale", "4", "--model", f["missing"]], "--model"),
    ("srcnn.evaluate", lambda f: ["--data", f["images"], "--scale", "-3"], "--scale"),
    ("srcnn.evaluate", lambda f: ["--scale", "3"], "--data"),
    ("srcnn.evaluate", lambda f: ["--data", "NoSuchSet"], "--data"),
    ("srcnn.evaluate", lambda f: ["--data", f["images"], "--weights", f["missing"]], "--weights"),
    ("srcnn.evaluate", lambda f: ["--data", f["images"], "--degradation", "blur"], "--degradation"),
    ("srgan.evaluate", lambda f: ["--data", f["images"], "--scale", "0", "--weights", f["model"]], "--scale"),
    ("srgan.evaluate", lambda f: ["--weights", f["model"]], "--data"),
    ("srgan.evaluate", lambda f: ["--data", f["missing"], "--weights", f["model"]], "--data"),
    ("srgan.evaluate", lambda f: ["--data", f["images"], "--weights", f["missing"]], "--weights"),
    ("esrgan.evaluate", lambda f: ["--data", f["images"], "--weights", f["missing"]], "--weights"),
    ("esrgan.evaluate", lambda f: ["--data", f["images"], "--weights", f["model"], "--scale", "0"], "--scale"),
    ("esrgan.evaluate", lambda f: ["--data", f["images"], "--weights", f["model"], "--json", f["root"]], "--json"),
    ("esrgan.evaluate", lambda f: ["--data", f["empty"], "--weights", f["model"]], "--data"),
    ("esrgan.sweep", lambda f: ["--psnr", f["model"], "--gan", f["model"], "--data", f["images"],
                                "--alphas", "0", "1.5"], "--alphas"),
    ("esrgan.sweep", lambda f: ["--psnr", f["missing"], "--gan", f["model"], "--data", f["images"]], "--psnr"),
    ("esrgan.sweep", lambda f: ["--psnr", f["model"], "--gan", f["model"], "--data", f["missing"]], "--data"),
    ("esrgan.sweep", lambda f: ["--psnr", f["model"], "--gan", f["model"], "--data", f["images"],
                                "--scale", "0"], "--scale"),
    ("esrgan.interpolate", lambda f: ["--psnr", f["model"], "--gan", f["model"], "--alpha", "1.5", "-o", "x.h5"],
     "--alpha"),
    ("esrgan.interpolate", lambda f: ["--psnr", f["model"], "--gan", f["model"], "--alpha", "nan", "-o", "x.h5"],
     "--alpha"),
    ("esrgan.interpolate", lambda f: ["--psnr", f["model"], "--gan", f["missing"], "--alpha", "0.5", "-o", "x.h5"],
     "--gan"),
    ("esrgan.interpolate", lambda f: ["--psnr", f["model"], "--gan", f["model"], "--alpha", "0.5"], "--output"),
]


def _case_id(case):
    command, argv, flag = case
    return f"{command}:{flag}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_a_bad_setting_is_one_error_line_naming_its_flag(case, files, tmp_path, monkeypatch, capsys):
    command, make_argv, flag = case
    module = importlib.import_module(command)
    for name in TRIPWIRES[command]:
        def tripwire(*args, _name=name, **kwargs):
            raise PastTheChecks(f"{command} called {_name} with a bad setting ({flag})")

        monkeypatch.setattr(module, name, tripwire)
    monkeypatch.chdir(tmp_path)  # default run and output folders land here
    capsys.readouterr()
    try:
        code = module.main(make_argv(files))
    except SystemExit as exc:  # argparse's own checks (types, choices, required flags)
        code = exc.code
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {flag}:"), err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_every_command_has_cases():
    assert {command for command, _, _ in CASES} == set(TRIPWIRES)


@pytest.mark.parametrize("command", ["srgan.train", "esrgan.train"])
def test_the_shipped_presets_pass_their_own_checks(command):
    """A gan-stage preset validates at every checkpoint (the guard's rule), and every preset of
    every chapter passes its config's checks (made at import)."""
    chapter = importlib.import_module(command.replace(".train", ".config"))
    for name, config in chapter.PRESETS.items():
        if config.stage == "gan" and config.validate_every:
            assert config.checkpoint_every % config.validate_every == 0, name


@pytest.mark.parametrize("argv, line", [
    (["--st", "1"], "error: --st: ambiguous, could match --stage, --steps"),
    (["--steps", "a", "-o", "x"], "error: --steps: invalid int value: 'a'"),
    ([], "error: --output: required (see prog --help)"),
    (["-o", "x", "--zz", "3"], "error: --zz: unrecognized argument (see prog --help)"),
    (["-o"], "error: --output: expected one argument"),
])
def test_argparse_complaints_are_one_line_naming_the_flag(argv, line, capsys):
    from common.config_cli import CommandParser

    parser = CommandParser(prog="prog")
    parser.add_argument("--stage")
    parser.add_argument("--steps", type=int)
    parser.add_argument("-o", "--output", required=True)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(argv)
    assert exit_.value.code == 2 and capsys.readouterr().err == line + "\n"


def test_setting_bounds_types_and_choices_are_checked_when_a_config_is_made():
    import dataclasses

    from common.config_cli import SettingError, check_settings, setting

    @dataclasses.dataclass(frozen=True)
    class Toy:
        steps: int = setting(4, "steps", minimum=1)
        rate: float | None = setting(0.5, "rate", minimum=0, below=1)
        sizes: tuple[int, ...] = setting((2,), "sizes", minimum=1)
        mode: str = setting("a", "mode", choices=("a", "b"))

        def __post_init__(self):
            check_settings(self)

    Toy(rate=None)
    for changes, line in (({"steps": 0}, "--steps: must be at least 1, not 0"),
                          ({"steps": 2.5}, "--steps: must be a whole number, not 2.5"),
                          ({"steps": True}, "--steps: must be a whole number, not True"),
                          ({"rate": 1.0}, "--rate: must be less than 1, not 1"),
                          ({"rate": float("inf")}, "--rate: must be a finite number, not inf"),
                          ({"sizes": (2, 0)}, "--sizes: must be at least 1, not 0"),
                          ({"mode": "c"}, "--mode: must be one of a, b, not 'c'")):
        with pytest.raises(SettingError) as error:
            Toy(**changes)
        assert str(error.value) == line and error.value.flag == line.split(":")[0]
