"""srgan.train on tiny configurations: GAN resume, the pretrain CLI with export, VGG errors."""
import json
from dataclasses import replace

import keras
import numpy as np
import pytest

from common.checkpoints import load_model, save_model
from srgan import train as srgan_train
from srgan.config import PRESETS, SRGANConfig
from srgan.models import srresnet
from tests.synthetic import sinusoid_folders


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three smooth 40x40 training images and two 32x32 validation images."""
    return sinusoid_folders(tmp_path_factory.mktemp("srgan_data"), 40, 32, max_freq=4, amplitude=0.4)


def tiny(data, **changes) -> SRGANConfig:
    return replace(PRESETS["tiny"], train_data=(str(data / "train"),), val_data=str(data / "val"),
                   hr_patch=16, **changes)


def values(variables):
    return [v.numpy() for v in variables]


def test_interrupted_gan_run_resumes_with_both_networks_and_optimizers(data, tmp_path):
    # the paper's GAN starts from SRResNet weights: an exported checkpoint here
    keras.utils.set_random_seed(1)
    start = srresnet(num_filters=8, num_blocks=1)
    init = save_model(start, tmp_path / "srresnet.h5", {"architecture": "srresnet",
                                                          "args": {"num_filters": 8, "num_blocks": 1}})
    config = tiny(data, stage="gan", steps=2, checkpoint_every=2, validate_every=2)
    first = srgan_train.build(config, tmp_path / "run", init=str(init), vgg_weights=None, progress=False)
    for a, b in zip(start.get_weights(), first.generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert first.trainer.fit()["step"] == 2
    saved = {name: values(obj.variables) for name, obj in (
        ("generator", first.generator), ("discriminator", first.discriminator),
        ("g_optimizer", first.g_optimizer), ("d_optimizer", first.d_optimizer))}
    assert int(first.g_optimizer.iterations) == 2 and int(first.d_optimizer.iterations) == 2

    # a new process would build everything again (the run was stopped after step 2 of 4)
    second = srgan_train.build(replace(config, steps=4), tmp_path / "run", init=str(init),
                               vgg_weights=None, progress=False)
    assert second.trainer.resumed_from == 2
    for name, obj in (("generator", second.generator), ("discriminator", second.discriminator),
                      ("g_optimizer", second.g_optimizer), ("d_optimizer", second.d_optimizer)):
        restored = values(obj.variables)
        assert len(restored) == len(saved[name]) > 0
        for a, b in zip(saved[name], restored):
            np.testing.assert_array_equal(a, b, err_msg=name)
    # slot variables (Adam's m and v) are among them and are not all zero
    assert any(np.abs(v).sum() > 0 for v in saved["d_optimizer"][2:])

    result = second.trainer.fit()
    assert result["step"] == 4 and set(result["last"]) >= {"d_loss", "g_loss", "content", "adversarial"}
    assert int(second.d_optimizer.iterations) == 4
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [1, 2, 3, 4]
    run_config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert run_config["stage"] == "gan" and run_config["init"] == str(init)
    # lr 1e-4 for the first half, 1e-5 for the second (per update)
    assert float(second.g_optimizer.learning_rate) == pytest.approx(1e-5)


def test_learning_rate_drops_after_half_of_the_steps():
    config = replace(PRESETS["srgan-vgg54"], steps=10)
    schedule = srgan_train.learning_rate(config)
    rates = [float(schedule(i)) for i in range(10)]  # iteration i = update i + 1
    assert rates == pytest.approx([1e-4] * 5 + [1e-5] * 5)
    d_schedule = srgan_train.learning_rate(config, updates_per_step=2)
    assert float(d_schedule(9)) == pytest.approx(1e-4) and float(d_schedule(10)) == pytest.approx(1e-5)


def test_pretrain_cli_runs_and_exports_a_reloadable_checkpoint(data, tmp_path, capsys):
    run_dir, out = tmp_path / "run", tmp_path / "srresnet_x4.h5"
    code = srgan_train.main([
        "--preset", "tiny", "--stage", "pretrain", "--content-loss", "mse", "--steps", "2",
        "--hr-patch", "16", "--train-data", str(data / "train"), "--val-data", str(data / "val"),
        "--run-dir", str(run_dir), "--export", str(out), "--quiet",
    ])
    assert code == 0, capsys.readouterr().err
    model, meta = load_model(out)
    assert meta["architecture"] == "srresnet" and meta["stage"] == "pretrain"
    assert meta["args"] == {"scale": 4, "num_filters": 8, "num_blocks": 1, "batch_norm": True}
    assert meta["input_range"] == [0, 1] and meta["output_range"] == [-1, 1]
    assert meta["upsampling"] == "post" and meta["content_loss"] == "mse" and meta["scale"] == 4
    best = json.loads((run_dir / "best.json").read_text())
    assert meta["steps"] == best["step"] and meta["val_psnr"] == pytest.approx(best["psnr"])
    assert (run_dir / "logs").is_dir() and json.loads((run_dir / "config.json").read_text())["steps"] == 2

    x = np.random.default_rng(0).uniform(0, 1, (1, 6, 7, 3)).astype(np.float32)
    y = model(x, training=False).numpy()
    assert y.shape == (1, 24, 28, 3)
    rebuilt, _ = load_model(out.with_name("srresnet_x4.weights.h5"))  # rebuilt from the JSON's args
    np.testing.assert_array_equal(y, rebuilt(x, training=False).numpy())
    # the export is the run's best checkpoint, which --init of the gan stage reads too
    fresh = srresnet(num_filters=8, num_blocks=1)
    assert srgan_train.init_generator(fresh, run_dir).startswith(str(run_dir / "best"))
    np.testing.assert_array_equal(y, fresh(x, training=False).numpy())


def test_vgg_loss_without_imagenet_weights_prints_one_line(data, tmp_path, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3] "
                        "Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    args = ["--preset", "tiny", "--hr-patch", "16", "--train-data", str(data / "train"),
            "--val-data", str(data / "val"), "--run-dir", str(tmp_path / "run"), "--quiet"]
    assert srgan_train.main(["--stage", "pretrain", "--content-loss", "vgg22", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ImageNet VGG19 weights are not available offline: pass --vgg-weights FILE")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # stopped before writing anything

    missing = tmp_path / "vgg19.h5"
    assert srgan_train.main(["--stage", "gan", "--content-loss", "vgg54", "--init", "none",
                             "--vgg-weights", str(missing), *args]) == 2
    assert capsys.readouterr().err == f"error: VGG19 weights file not found: {missing}\n"


def test_gan_stage_needs_pretrained_weights(data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no runs/srresnet-mse here
    assert srgan_train.main(["--stage", "gan", "--preset", "tiny", "--train-data", str(data / "train"),
                             "--val-data", str(data / "val"), "--quiet"]) == 2
    assert "--init" in capsys.readouterr().err
    assert srgan_train.main(["--stage", "gan", "--init", str(tmp_path), "--preset", "tiny", "--hr-patch", "16",
                             "--train-data", str(data / "train"), "--val-data", str(data / "val"),
                             "--run-dir", str(tmp_path / "run"), "--quiet"]) == 2
    assert "no checkpoint in that run folder" in capsys.readouterr().err


def test_presets_are_the_papers_variants():
    assert {n: (c.stage, c.content_loss) for n, c in PRESETS.items() if n != "tiny"} == {
        "srresnet-mse": ("pretrain", "mse"), "srresnet-vgg22": ("pretrain", "vgg22"),
        "srgan-mse": ("gan", "mse"), "srgan-vgg22": ("gan", "vgg22"), "srgan-vgg54": ("gan", "vgg54"),
        "srresnet-cpu": ("pretrain", "l1"),  # the shipped checkpoint's recipe (not the paper's)
        "srgan-cpu": ("gan", "vgg54")}  # the shipped SRGAN's: VGG54-style on an offline feature network
    cpu = PRESETS["srresnet-cpu"]
    assert (cpu.num_filters, cpu.num_blocks, cpu.batch_norm) == (64, 16, True)  # the paper's network
    gan = PRESETS["srgan-vgg54"]
    assert (gan.scale, gan.hr_patch, gan.batch_size, gan.num_filters, gan.num_blocks) == (4, 96, 16, 64, 16)
    assert (gan.lr, gan.beta_1, gan.adversarial_weight, gan.d_steps, gan.lr_boundary) == (1e-4, 0.9, 1e-3, 1, 100_000)
    with pytest.raises(ValueError, match="multiple of 16"):
        SRGANConfig(stage="gan", hr_patch=24)


@pytest.mark.parametrize("perceptual", ["vgg-random", "disc-features"])
def test_offline_perceptual_losses_train_and_are_named_in_the_checkpoint(data, tmp_path, perceptual):
    config = tiny(data, stage="gan", content_loss="vgg54", perceptual=perceptual, content_weight=0.5,
                  lowpass_weight=1.0, steps=2, checkpoint_every=2, validate_every=2, r1_weight=0.5)
    result = srgan_train.train(config, tmp_path / "run", init=None, export=tmp_path / "g.h5", vgg_weights=None,
                               progress=False)
    assert result["step"] == 2 and np.isfinite(result["last"]["content"])
    meta = json.loads((tmp_path / "g.json").read_text())
    assert meta["content_weight"] == 0.5 and meta["lowpass_weight"] == 1.0 and meta["r1_weight"] == 0.5
    assert "r1" in result["last"]
    assert ("random He-normal" if perceptual == "vgg-random" else "the GAN's own discriminator") in meta["perceptual"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "validation.jsonl").read_text().splitlines()]
    assert steps == [0, 2]  # a guarded run is validated at its start


def test_init_refuses_a_generator_that_differs_only_in_its_output_activation(tmp_path):
    from common.chapter import InitError, init_generator

    keras.utils.set_random_seed(0)
    source = srresnet(num_filters=8, num_blocks=1, output_activation="tanh")
    path = save_model(source, tmp_path / "tanh.h5", {"architecture": "srresnet",
                                                     "args": {"num_filters": 8, "num_blocks": 1,
                                                              "output_activation": "tanh"}})
    with pytest.raises(InitError, match="different outputs"):
        init_generator(srresnet(num_filters=8, num_blocks=1), str(path))
    assert init_generator(srresnet(num_filters=8, num_blocks=1, output_activation="tanh"), str(path)) == str(path)
