"""esrgan.gan and esrgan.train on tiny configurations: one GAN step, the relativistic losses,
the psnr-stage CLI with export, GAN resume with both optimizers, presets and schedules."""
import json
from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.checkpoints import load_model, save_model
from esrgan import train as esrgan_train
from esrgan.config import PRESETS, ESRGANConfig
from esrgan.gan import ESRGAN, METRICS
from esrgan.losses import RelativisticDiscriminatorLoss, RelativisticGeneratorLoss
from esrgan.models import discriminator, rrdb_generator
from tests.synthetic import sinusoid_folders

TINY_G = dict(num_filters=8, num_blocks=1, growth=4)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three textured 48x48 training images and two 40x40 validation images."""
    return sinusoid_folders(tmp_path_factory.mktemp("esrgan_data"), 48, 40, max_freq=6, amplitude=0.3, noise=0.05)


def tiny(data, **changes) -> ESRGANConfig:
    return replace(PRESETS["tiny"], train_data=(str(data / "train"),), val_data=str(data / "val"), **changes)


def values(variables):
    return [v.numpy() for v in variables]


def test_one_gan_step_updates_both_networks_and_reports_the_named_losses():
    keras.utils.set_random_seed(0)
    config = PRESETS["tiny"]
    gen, disc = rrdb_generator(**TINY_G), discriminator(patch=32, num_filters=8)
    model = ESRGAN(gen, disc, *esrgan_train.make_losses(config, vgg_weights=None))
    model.compile(esrgan_train.make_optimizer(config), esrgan_train.make_optimizer(config))
    rng = np.random.default_rng(1)
    hr = rng.uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    lr = tf.image.resize(hr, (8, 8), "area").numpy()
    g_before, d_before = values(gen.trainable_variables), values(disc.trainable_variables)

    out = {k: float(v) for k, v in model.train_step((lr, hr)).items()}

    assert set(out) == set(METRICS) and all(np.isfinite(v) for v in out.values())
    assert out["g_loss"] == pytest.approx(out["percep"] + out["ra"] + out["l1"], rel=1e-5)
    assert out["l1"] > 0 and out["percep"] > 0 and out["d_loss"] > 0 and 0 < out["d_real"] < 1
    # the generator's relativistic term carries the 5e-3 weight: ~ 5e-3 * log 2 near D's start
    assert 0 < out["ra"] < 0.05
    assert all(not np.array_equal(a, b.numpy()) for a, b in zip(g_before, gen.trainable_variables))
    # every discriminator kernel moves (a conv bias right before BN has an exactly-zero gradient in
    # theory, so whether it moves depends on rounding, e.g. on the thread count)
    moved = {v.path: not np.array_equal(a, v.numpy()) for a, v in zip(d_before, disc.trainable_variables)}
    assert all(m for path, m in moved.items() if "kernel" in path) and any("kernel" in p for p in moved)
    assert int(model.g_optimizer.iterations) == 1 and int(model.d_optimizer.iterations) == 1


def test_relativistic_losses_favour_real_logits_above_fake_ones():
    d_loss, g_loss = RelativisticDiscriminatorLoss(), RelativisticGeneratorLoss(weight=1.0)
    far = (tf.constant([6.0, 5.0, 7.0]), tf.constant([-6.0, -5.0, -4.0]))  # D tells them apart
    even = (tf.constant([0.5, -0.5, 0.1]), tf.constant([0.4, -0.3, 0.0]))
    swapped = far[::-1]
    assert float(d_loss(*far)) < 0.01 < float(d_loss(*even)) < float(d_loss(*swapped))
    assert float(g_loss(*far)) > float(g_loss(*even)) > float(g_loss(*swapped))
    # both losses depend only on the relative logits: shifting all of them changes nothing
    shifted = (far[0] + 3.0, far[1] + 3.0)
    assert float(d_loss(*shifted)) == pytest.approx(float(d_loss(*far)), rel=1e-6)
    # with equal logits D cannot tell: log 2 for each of the averaged halves
    assert float(d_loss(tf.zeros(4), tf.zeros(4))) == pytest.approx(np.log(2.0), rel=1e-6)


def test_psnr_cli_runs_two_steps_and_exports_a_reloadable_checkpoint(data, tmp_path, capsys):
    run_dir, out = tmp_path / "run", tmp_path / "rrdb_psnr_x4.h5"
    code = esrgan_train.main([
        "--preset", "tiny", "--stage", "psnr", "--steps", "2", "--train-data", str(data / "train"),
        "--val-data", str(data / "val"), "--run-dir", str(run_dir), "--export", str(out), "--quiet",
    ])
    assert code == 0, capsys.readouterr().err
    model, meta = load_model(out)
    assert meta["architecture"] == "rrdb_generator" and meta["stage"] == "psnr"
    assert meta["args"] == {"scale": 4, "num_filters": 8, "num_blocks": 1, "growth": 4, "res_scale": 0.2}
    assert meta["input_range"] == [0, 1] and meta["output_range"] == [0, 1]
    assert meta["upsampling"] == "post" and meta["color"] == "rgb" and meta["scale"] == 4
    assert meta["degradation"] == "bicubic" and meta["training_data"] == str(data / "train")
    best = json.loads((run_dir / "best.json").read_text())
    assert meta["steps"] == best["step"] and meta["val_psnr"] == pytest.approx(best["psnr"])
    assert "val_niqe" not in meta  # a PSNR stage does not measure it
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [1, 2] and all(h["l1"] > 0 for h in history)
    assert (run_dir / "logs").is_dir()

    x = np.random.default_rng(0).uniform(0, 1, (1, 6, 7, 3)).astype(np.float32)
    y = model(x, training=False).numpy()
    assert y.shape == (1, 24, 28, 3)
    rebuilt, _ = load_model(out.with_name("rrdb_psnr_x4.weights.h5"))  # rebuilt from the JSON's args
    np.testing.assert_array_equal(y, rebuilt(x, training=False).numpy())
    # the gan stage's --init reads the same (best) weights from the run folder
    fresh = rrdb_generator(**TINY_G)
    assert esrgan_train.init_generator(fresh, run_dir).startswith(str(run_dir / "best"))
    np.testing.assert_array_equal(y, fresh(x, training=False).numpy())


def test_interrupted_gan_run_resumes_with_both_networks_and_optimizers(data, tmp_path):
    keras.utils.set_random_seed(1)
    config = tiny(data, stage="gan", steps=2, lr=1e-4, lr_milestones=(3,), validate_every=2)
    first = esrgan_train.build(config, tmp_path / "run", vgg_weights=None, progress=False)
    assert first.trainer.fit()["step"] == 2
    saved = {name: values(obj.variables) for name, obj in (
        ("generator", first.generator), ("discriminator", first.discriminator),
        ("g_optimizer", first.g_optimizer), ("d_optimizer", first.d_optimizer))}

    # a new process builds everything again (the run was stopped after step 2 of 4)
    second = esrgan_train.build(replace(config, steps=4), tmp_path / "run", vgg_weights=None, progress=False)
    assert second.trainer.resumed_from == 2
    for name, obj in (("generator", second.generator), ("discriminator", second.discriminator),
                      ("g_optimizer", second.g_optimizer), ("d_optimizer", second.d_optimizer)):
        restored = values(obj.variables)
        assert len(restored) == len(saved[name]) > 0
        for a, b in zip(saved[name], restored):
            np.testing.assert_array_equal(a, b, err_msg=name)
    # Adam's moments are among them and are not all zero
    assert any(np.abs(v).sum() > 0 for v in saved["d_optimizer"][2:])
    assert any(np.abs(v).sum() > 0 for v in saved["g_optimizer"][2:])

    result = second.trainer.fit()
    assert result["step"] == 4 and set(result["last"]) == set(METRICS)
    assert int(second.g_optimizer.iterations) == 4 and int(second.d_optimizer.iterations) == 4
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [1, 2, 3, 4]
    # lr 1e-4 for updates 1-3, halved from update 4 on
    assert float(second.g_optimizer.learning_rate) == pytest.approx(5e-5)
    assert float(second.d_optimizer.learning_rate) == pytest.approx(5e-5)


def test_schedules_and_presets_follow_the_paper():
    psnr, gan = PRESETS["psnr"], PRESETS["gan"]
    assert (psnr.stage, psnr.lr, psnr.batch_size, psnr.hr_patch, psnr.num_blocks, psnr.num_filters,
            psnr.growth) == ("psnr", 2e-4, 16, 128, 23, 64, 32)
    assert (gan.stage, gan.lr, gan.gan_weight, gan.l1_weight, gan.perceptual_weight) == ("gan", 1e-4, 5e-3, 1e-2, 1)
    schedule = esrgan_train.learning_rate(gan)
    for update, rate in ((1, 1e-4), (50_000, 1e-4), (50_001, 5e-5), (100_001, 2.5e-5), (300_001, 6.25e-6)):
        assert float(schedule(update - 1)) == pytest.approx(rate)  # iteration i is update i + 1
    assert float(esrgan_train.learning_rate(psnr)(400_000)) == pytest.approx(5e-5)
    assert PRESETS["cpu"].stage == "psnr" and PRESETS["cpu"].num_blocks < 23
    name, config = esrgan_train.resolve_config(esrgan_train.parse_args(
        ["--stage", "gan", "--num-blocks", "4", "--num-filters", "32", "--lr-milestones", "10", "20"]))
    assert name == "gan" and (config.num_blocks, config.num_filters, config.lr_milestones) == (4, 32, (10, 20))
    with pytest.raises(ValueError, match="multiple of 32"):
        replace(gan, hr_patch=48)


def test_missing_vgg_weights_and_psnr_weights_give_one_line_errors(data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no runs/esrgan-psnr here
    args = ["--preset", "tiny", "--stage", "gan", "--train-data", str(data / "train"),
            "--val-data", str(data / "val"), "--run-dir", str(tmp_path / "run"), "--quiet"]
    assert esrgan_train.main(args) == 2
    assert "--init" in capsys.readouterr().err

    missing = tmp_path / "vgg19.h5"
    assert esrgan_train.main([*args, "--init", "none", "--vgg-weights", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: VGG19 weights file not found: {missing}\n"
    assert not (tmp_path / "run").exists()  # stopped before writing anything


@pytest.mark.parametrize("perceptual", ["disc-features", "pretrained-disc"])
def test_gan_stage_on_an_offline_perceptual_network_names_it_in_the_checkpoint(data, tmp_path, perceptual):
    config = tiny(data, stage="gan", perceptual=perceptual, perceptual_weight=0.2, lowpass_weight=1.0, steps=2,
                  checkpoint_every=2, validate_every=2)
    result = esrgan_train.train(config, tmp_path / "run", init=None, export=tmp_path / "g.h5", vgg_weights=None,
                                progress=False)
    assert result["step"] == 2 and all(np.isfinite(result["last"][k]) for k in ("percep", "ra", "l1"))
    meta = json.loads((tmp_path / "g.json").read_text())
    assert meta["lowpass_weight"] == 1.0 and meta["perceptual_weight"] == 0.2
    assert ("own discriminator" if perceptual == "disc-features" else "krasserm") in meta["perceptual"]


def test_a_gan_stage_export_records_the_validation_niqe_it_was_chosen_by(tmp_path):
    # validation images large enough for NIQE's 96x96 blocks
    (tmp_path / "data").mkdir()
    big = sinusoid_folders(tmp_path / "data", 200, 200, max_freq=6, amplitude=0.3, noise=0.05)
    config = tiny(big, stage="gan", perceptual="disc-features", steps=4, lr_milestones=(), validate_every=2,
                  checkpoint_every=2, max_psnr_drop=100.0, max_colour_shift=1.0)
    esrgan_train.train(config, tmp_path / "run", init=None, export=tmp_path / "g.h5", vgg_weights=None,
                       progress=False)
    validated = {v["step"]: v for v in map(json.loads, (tmp_path / "run" / "validation.jsonl").read_text().splitlines())}
    meta, best = json.loads((tmp_path / "g.json").read_text()), json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["niqe"] == min(validated[s]["niqe"] for s in (2, 4))  # the step 0 start is not a candidate
    assert meta["steps"] == best["step"] and meta["val_niqe"] == pytest.approx(best["niqe"])
    assert meta["val_psnr"] == pytest.approx(validated[best["step"]]["psnr"])


def test_feature_matching_on_the_own_discriminator_moves_with_its_weights():
    from dataclasses import replace as change

    keras.utils.set_random_seed(0)
    disc = discriminator(patch=32, num_filters=4)
    loss = esrgan_train.perceptual_loss(change(PRESETS["tiny"], stage="gan", perceptual="disc-features"), None, disc)
    hr, sr = tf.random.uniform((2, 32, 32, 3), seed=1), tf.random.uniform((2, 32, 32, 3), seed=2)
    before = float(loss(hr, sr))
    rng = np.random.default_rng(0)
    for w in disc.trainable_weights:  # (a mere rescaling would not do: the distances are normalised)
        w.assign(w + rng.normal(0.0, 0.1, w.shape).astype("float32"))
    assert float(loss(hr, sr)) != pytest.approx(before, rel=1e-3)


def test_weight_average_is_validated_checkpointed_resumed_and_exported(data, tmp_path):
    from common.ema import checkpoint_has

    keras.utils.set_random_seed(2)
    config = tiny(data, stage="gan", steps=2, lr=1e-3, lr_milestones=(), validate_every=2, checkpoint_every=2,
                  ema_decay=0.5)
    first = esrgan_train.build(config, tmp_path / "run", vgg_weights=None, progress=False)
    start = values(first.generator.variables)
    first.trainer.fit()
    average, raw = values(first.generator.variables), values(first.model.generator.variables)
    assert first.generator is not first.model.generator
    assert any(not np.array_equal(a, b) for a, b in zip(average, raw))  # half way behind the raw weights
    assert any(not np.array_equal(a, b) for a, b in zip(average, start))
    assert checkpoint_has(first.trainer.manager.latest_checkpoint, "generator_ema")

    second = esrgan_train.build(replace(config, steps=3), tmp_path / "run", vgg_weights=None, progress=False)
    for a, b in zip(average, values(second.generator.variables)):
        np.testing.assert_array_equal(a, b)

    # a run written without the average starts it at the restored raw weights
    plain = replace(config, ema_decay=0.0)
    esrgan_train.build(plain, tmp_path / "plain", vgg_weights=None, progress=False).trainer.fit()
    resumed = esrgan_train.build(replace(config, steps=3), tmp_path / "plain", vgg_weights=None, progress=False)
    for a, b in zip(values(resumed.model.generator.variables), values(resumed.generator.variables)):
        np.testing.assert_array_equal(a, b)

    # --export writes the average of the best step, the lowest NIQE; the 40x40 validation images are
    # too small for NIQE's 96x96 blocks, so there is no best and the last step is exported
    out = esrgan_train.train(replace(config, steps=4), tmp_path / "run", export=tmp_path / "g.h5",
                             vgg_weights=None, progress=False)
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "best")) is None
    exported, _ = load_model(out["exported"])
    last_average, last_raw = rrdb_generator(**TINY_G), rrdb_generator(**TINY_G)
    tf.train.Checkpoint(generator_ema=last_average, generator=last_raw).restore(
        tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))).expect_partial()
    for a, b in zip(exported.get_weights(), last_average.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(exported.get_weights(), last_raw.get_weights()))


def test_discriminator_warmup_holds_the_generator_then_lets_it_train(data, tmp_path):
    keras.utils.set_random_seed(3)
    config = tiny(data, stage="gan", perceptual="disc-features", feature_layers=("lrelu3_1", "lrelu4_1"),
                  d_warmup=2, steps=2, lr=1e-3, lr_milestones=(5,), validate_every=2, checkpoint_every=2)
    session = esrgan_train.build(config, tmp_path / "run", vgg_weights=None, progress=False)
    gen, disc = session.model.generator, session.model.discriminator
    g_start, d_start = values(gen.trainable_variables), values(disc.trainable_variables)
    session.trainer.fit()
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(g_start, gen.trainable_variables))
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(d_start, disc.trainable_variables))
    # the generator's Adam moments followed its gradients while its rate was 0
    assert any(np.any(v.numpy() != 0) for v in session.model.g_optimizer.variables if "momentum" in v.path)

    resumed = esrgan_train.build(replace(config, steps=3), tmp_path / "run", vgg_weights=None, progress=False)
    g_held = values(resumed.model.generator.trainable_variables)
    resumed.trainer.fit()
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(g_held, resumed.model.generator.trainable_variables))

    # the rate after the warm-up keeps the milestones: 1e-3 for updates 3..5, then halved
    rate = esrgan_train.learning_rate(config, hold=2)
    assert [float(rate(i)) for i in (0, 1, 2, 4, 5)] == pytest.approx([0, 0, 1e-3, 1e-3, 5e-4])
    meta = esrgan_train.checkpoint_meta(config, 3, None)
    assert meta["d_warmup"] == 2 and "lrelu3_1, lrelu4_1" in meta["perceptual"] and "lrelu0_1" not in meta["perceptual"]
    with pytest.raises(ValueError, match="--d-warmup: must be at least 0"):
        replace(config, d_warmup=-1)


def test_a_new_gan_run_can_start_its_discriminator_from_another_runs(data, tmp_path, capsys):
    keras.utils.set_random_seed(4)
    config = tiny(data, stage="gan", steps=2, validate_every=2, checkpoint_every=2)
    first = esrgan_train.build(config, tmp_path / "first", vgg_weights=None, progress=False)
    first.trainer.fit()
    trained = values(first.discriminator.variables)  # kernels and batch-norm statistics
    follow = replace(config, init_discriminator=str(tmp_path / "first"), seed=1)
    second = esrgan_train.build(follow, tmp_path / "second", vgg_weights=None, progress=False)
    for a, b in zip(trained, values(second.discriminator.variables)):
        np.testing.assert_array_equal(a, b)
    assert esrgan_train.checkpoint_meta(follow, 2, None)["init_discriminator"] == str(tmp_path / "first")
    fresh = esrgan_train.build(replace(config, seed=1), tmp_path / "fresh", vgg_weights=None, progress=False)
    assert any(not np.array_equal(a, b) for a, b in zip(trained, values(fresh.discriminator.variables)))

    # a file of the wrong network, or no run, is a one-line error before anything is written
    wrong = tmp_path / "d.weights.h5"
    discriminator(patch=32, num_filters=4).save_weights(wrong)
    for source, message in ((wrong, "not a matching discriminator"), (tmp_path / "empty", "not a run folder")):
        args = ["--stage", "gan", "--preset", "tiny", "--init", "none", "--vgg-weights", "random",
                "--train-data", str(data / "train"), "--val-data", str(data / "val"),
                "--run-dir", str(tmp_path / "bad"), "--init-discriminator", str(source), "--quiet"]
        assert esrgan_train.main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --init-discriminator") and message in err and err.count("\n") == 1


def test_r1_penalty_is_the_squared_input_gradient_of_the_real_logits():
    from common.losses import r1_penalty

    keras.utils.set_random_seed(0)
    linear = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(1, use_bias=False)])
    x = np.random.default_rng(0).uniform(0, 1, (3, 4, 4, 3)).astype(np.float32)
    logits, penalty = r1_penalty(linear, x)
    kernel = linear.layers[-1].kernel.numpy()
    np.testing.assert_allclose(logits.numpy(), x.reshape(3, -1) @ kernel, rtol=1e-5)
    assert float(penalty) == pytest.approx(float(np.sum(kernel ** 2)), rel=1e-5)  # grad of w.x is w, per image


def test_r1_weight_changes_only_the_discriminators_update():
    rng = np.random.default_rng(1)
    hr = rng.uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    lr = tf.image.resize(hr, (8, 8), "area").numpy()
    config = PRESETS["tiny"]
    after = {}
    for r1_weight in (0.0, 10.0):
        keras.utils.set_random_seed(0)
        gen, disc = rrdb_generator(**TINY_G), discriminator(patch=32, num_filters=8)
        model = ESRGAN(gen, disc, *esrgan_train.make_losses(config, vgg_weights=None), r1_weight=r1_weight)
        model.compile(esrgan_train.make_optimizer(config), esrgan_train.make_optimizer(config))
        out = {k: float(v) for k, v in model.train_step((lr, hr)).items()}
        after[r1_weight] = (out, values(gen.trainable_variables), values(disc.trainable_variables))
    (plain, g0, d0), (with_r1, g1, d1) = after[0.0], after[10.0]
    assert "r1" not in plain and with_r1["r1"] > 0 and set(with_r1) == set(METRICS) | {"r1"}
    assert with_r1["d_loss"] == pytest.approx(plain["d_loss"], rel=1e-5)  # reported without the penalty
    assert all(np.array_equal(a, b) for a, b in zip(g0, g1))  # G's step is scored before D's update
    assert any(not np.allclose(a, b) for a, b in zip(d0, d1))
    with pytest.raises(ValueError, match="r1_weight"):
        ESRGAN(gen, disc, *esrgan_train.make_losses(config, vgg_weights=None), r1_weight=-1.0)


def test_compact_arch_trains_exports_and_upscales_on_every_backend(data, tmp_path, capsys, monkeypatch):
    from common import backends
    from common.upscaler import Upscaler

    monkeypatch.setenv("SR_CACHE_DIR", str(tmp_path / "cache"))
    run_dir, out = tmp_path / "run", tmp_path / "compact_x4.h5"
    code = esrgan_train.main([
        "--preset", "tiny", "--arch", "srvgg-compact", "--steps", "2", "--train-data", str(data / "train"),
        "--val-data", str(data / "val"), "--run-dir", str(run_dir), "--export", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert json.loads((run_dir / "config.json").read_text())["arch"] == "srvgg-compact"
    model, meta = load_model(out)
    assert meta["architecture"] == "srvgg_compact" and meta["args"] == {"scale": 4, "num_filters": 8, "num_convs": 2}
    assert meta["display_name"] == "SRVGGNetCompact-PSNR" and meta["parameters"] == model.count_params()
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    rebuilt, _ = load_model(out.with_name("compact_x4.weights.h5"))  # by the JSON's architecture and args
    x = np.random.default_rng(0).uniform(0, 1, (1, 6, 7, 3)).astype(np.float32)
    np.testing.assert_array_equal(model(x, training=False).numpy(), rebuilt(x, training=False).numpy())

    image = np.random.default_rng(1).uniform(0, 1, (21, 18, 3)).astype(np.float32)
    expected = Upscaler(str(out), backend="tensorflow", tile=0)(image)
    assert expected.shape == (84, 72, 3)
    for backend in [b for b in ("openvino", "onnxruntime") if backends.installed(b)]:
        got = Upscaler(str(out), backend=backend, tile=0)(image)
        assert np.abs(got - expected).max() <= 1 / 255, backend


def test_init_and_resume_across_architectures_fail_with_one_line(data, tmp_path, capsys):
    base = ["--preset", "tiny", "--steps", "2", "--train-data", str(data / "train"), "--val-data", str(data / "val"),
            "--quiet", "--vgg-weights", "random"]
    assert esrgan_train.main([*base, "--run-dir", str(tmp_path / "rrdb"), "--export", str(tmp_path / "rrdb.h5")]) == 0
    capsys.readouterr()
    for init in (tmp_path / "rrdb.h5", tmp_path / "rrdb"):  # an export, a run folder
        assert esrgan_train.main([*base, "--stage", "gan", "--arch", "srvgg-compact", "--init", str(init),
                                  "--run-dir", str(tmp_path / "gan")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --init") and "holds a rrdb generator" in err and "--arch rrdb" in err
        assert err.count("\n") == 1
    assert not (tmp_path / "gan").exists()  # stopped before writing anything
    # resuming the rrdb run as another architecture
    resume = [*base, "--steps", "3", "--arch", "srvgg-compact", "--run-dir", str(tmp_path / "rrdb")]
    assert esrgan_train.main(resume) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--arch rrdb" in err and err.count("\n") == 1
    # a run folder from before --arch (no "arch" in its config.json) is an RRDB run
    config_file = tmp_path / "rrdb" / "config.json"
    old = {k: v for k, v in json.loads(config_file.read_text()).items() if k not in ("arch", "num_convs")}
    config_file.write_text(json.dumps(old))
    assert esrgan_train.run_arch(tmp_path / "rrdb") == "rrdb"
    esrgan_train.check_architecture(tiny(data), tmp_path / "rrdb", None)  # resumes as rrdb
    with pytest.raises(esrgan_train.InitError, match="--arch rrdb"):
        esrgan_train.check_architecture(tiny(data, arch="srvgg-compact"), tmp_path / "new", tmp_path / "rrdb")


def test_compact_preset_is_the_cpu_preset_with_the_compact_generator(capsys):
    cpu, compact = PRESETS["cpu"], PRESETS["compact-cpu"]
    assert (compact.arch, compact.num_filters, compact.num_convs) == ("srvgg-compact", 64, 16)
    assert replace(compact, arch="rrdb", num_filters=cpu.num_filters) == cpu
    assert compact.generator_args() == {"scale": 4, "num_filters": 64, "num_convs": 16}
    assert esrgan_train.build_generator(compact).count_params() == 621_424
    assert PRESETS["psnr"].arch == "rrdb" and "num_convs" not in PRESETS["psnr"].generator_args()
    with pytest.raises(SystemExit):
        esrgan_train.parse_args(["--arch", "vgg"])
    assert "invalid choice: 'vgg'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--arch: must be one of"):
        replace(cpu, arch="vgg")


def test_srresnet_arch_trains_to_zero_one_and_reloads_by_its_json(data, tmp_path, capsys):
    from common.upscaler import Upscaler
    from srgan.chapter import CHAPTER as SRGAN
    from srgan.models import srresnet

    out = tmp_path / "srresnet.h5"
    code = esrgan_train.main([
        "--preset", "tiny", "--arch", "srresnet", "--num-blocks", "1", "--steps", "2", "--train-data",
        str(data / "train"), "--val-data", str(data / "val"), "--run-dir", str(tmp_path / "run"), "--export", str(out),
        "--quiet"])
    assert code == 0, capsys.readouterr().err
    model, meta = load_model(out.with_name("srresnet.weights.h5"))  # built by srgan's builder, from the JSON
    assert meta["architecture"] == "srresnet" and meta["args"] == {"scale": 4, "num_filters": 8, "num_blocks": 1}
    assert meta["output_range"] == [0, 1] and meta["display_name"] == "SRResNet-PSNR"  # not SRGAN's [-1, 1]
    image = np.random.default_rng(2).uniform(0, 1, (10, 9, 3)).astype(np.float32)

    def upscaled(source, meta=None):
        return Upscaler(source, meta, backend="tensorflow", tile=0)(image)

    got = upscaled(str(out))  # read with the file's JSON
    np.testing.assert_allclose(got, upscaled(model, {"scale": 4, "output_range": [0, 1]}), atol=1e-6)
    assert np.abs(got - upscaled(model, {"scale": 4, "output_range": [-1, 1]})).max() > 0.01
    # SRGAN's own SRResNet gives [-1, 1]: not a start for these losses
    srgan_file = tmp_path / "srgan_srresnet.h5"
    save_model(srresnet(num_filters=8, num_blocks=1), srgan_file,
               SRGAN.checkpoint_meta("srresnet", {"scale": 4, "num_filters": 8, "num_blocks": 1}, 4))
    with pytest.raises(esrgan_train.InitError, match=r"gives values in \[-1, 1\]"):
        esrgan_train.check_architecture(tiny(data, arch="srresnet", num_blocks=1), tmp_path / "new", srgan_file)
