import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from common.checkpoints import load_model
from srcnn.evaluate import bicubic, evaluate, load_srcnn
from srcnn.models import border, srcnn
from srcnn.thesis import load_thesis_checkpoint
from srcnn.train import main as train_main

THESIS = "srcnn_v4.h5"
ROOT = Path(__file__).resolve().parents[2]
# A run written by srcnn.train before it became a step object (commit 4427a65, the arguments of
# tiny_run_args, --steps 2): its checkpoint and the state the old code held when saving it.
OLD_RUN = Path(__file__).with_name("data") / "run_4427a65"


def write_training_images(folder: Path) -> Path:
    """Three grey 60x60 sinusoid textures with noise."""
    import cv2

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        y, x = np.mgrid[0:60, 0:60] / 6.0
        img = (np.sin(x + i) * np.cos(y) * 100 + 128 + rng.normal(0, 5, (60, 60))).clip(0, 255)
        cv2.imwrite(str(folder / f"{i}.png"), np.repeat(img[..., None], 3, 2).astype(np.uint8))
    return folder


def tiny_run_args(data: Path, val: Path, run: Path, *scales) -> list:
    return ["--preset", "adam", "--train-data", str(data), "--val-data", str(val),
            "--scales", *map(str, scales or (3,)), "--n1", "8", "--n2", "4", "--patch", "24", "--batch-size", "4",
            "--validate-every", "2", "--checkpoint-every", "2", "--log-every", "1", "--run-dir", str(run)]


@pytest.mark.parametrize("f2,params", [(1, 5248 + 2080 + 801), (3, 5248 + 18464 + 801),
                                       (5, 5248 + 51232 + 801)])
def test_paper_variants_parameter_counts(f2, params):
    # 9-f2-5 with n1=64, n2=32 on the Y channel, as in Dong et al.
    assert srcnn(f2=f2).count_params() == params


@pytest.mark.parametrize("padding,size", [("valid", 33 - 2 * 8), ("same", 33), ("reflect", 33)])
def test_padding_modes_and_shared_weights(padding, size):
    base = srcnn(padding="valid")
    model = srcnn(padding=padding)
    model.set_weights(base.get_weights())
    x = np.random.default_rng(0).random((1, 33, 33, 1), dtype=np.float32)
    y = model(x, training=False).numpy()
    assert y.shape == (1, size, size, 1)
    if padding == "reflect":  # the centre equals the valid network's output
        np.testing.assert_allclose(y[:, 8:-8, 8:-8], base(x, training=False).numpy(), atol=1e-5)
    assert border() == 8


def test_thesis_checkpoint_loads_and_beats_bicubic_on_its_degradation(shared_data):
    path = shared_data.parent / "reference-models" / THESIS
    model, meta = load_thesis_checkpoint(path)
    assert meta["args"] == dict(f1=9, f2=3, f3=5, n1=64, n2=32, channels=3, padding="same",
                                output_activation="tanh")
    assert meta["input_range"][0] == pytest.approx(-127 / 128)
    thesis = evaluate(path, shared_data / "Set5", 2, protocol="thesis")
    base = bicubic(shared_data / "Set5", 2, protocol="thesis")
    assert thesis["psnr"] > base["psnr"] + 0.3
    # load_srcnn recognises the Keras 2 file by itself
    assert load_srcnn(path, 2)[1]["degradation"] == "thesis"


def test_train_cli_resumes_and_exports(tmp_path, shared_data):
    run = tmp_path / "run"
    args = tiny_run_args(write_training_images(tmp_path / "train"), shared_data / "Set5", run, 2, 3)
    assert train_main(args + ["--steps", "2"]) == 0
    export = tmp_path / "w" / "srcnn_x{scale}.h5"
    export.parent.mkdir()
    assert train_main(args + ["--steps", "3", "--export", str(export)]) == 0
    history = [json.loads(line)["step"] for line in (run / "history.jsonl").read_text().splitlines()]
    assert history == [1, 2, 3]  # resumed at step 2, not restarted
    for scale in (2, 3):
        model, meta = load_model(tmp_path / "w" / f"srcnn_x{scale}.h5")
        assert meta["scale"] == scale and meta["trained_scales"] == [2, 3]
        assert meta["upsampling"] == "pre" and meta["color"] == "y"
        assert model.count_params() == srcnn(n1=8, n2=4).count_params()


def test_revive_dead_filters_keeps_the_output_and_wakes_the_filters():
    import keras

    from srcnn.train import dead_filters, revive_dead_filters

    keras.utils.set_random_seed(0)
    model = srcnn(n1=8, n2=4)
    rng = np.random.default_rng(0)
    images = [rng.uniform(0.1, 0.9, (30, 34, 1)).astype(np.float32) for _ in range(3)]
    for name, idx in (("conv1", [1, 5]), ("conv2", [2])):  # kill them: a bias no input can beat
        kernel, bias = model.get_layer(name).get_weights()
        bias[idx] = -1e3
        model.get_layer(name).set_weights([kernel, bias])
    before = [np.asarray(model(x[None])) for x in images]
    dead = {k: [int(i) for i in v] for k, v in dead_filters(model, images).items()}
    assert {1, 5} <= set(dead["conv1"]) and 2 in dead["conv2"]  # (random weights may add others)

    assert revive_dead_filters(model, images) == dead
    for x, y in zip(images, before):
        np.testing.assert_array_equal(np.asarray(model(x[None])), y)  # their way out is zeroed
    assert all(len(v) == 0 for v in dead_filters(model, images).values())
    # the live next-layer filters' weights from the revived ones start at zero, the filters' own do not
    live2 = [i for i in range(4) if i not in dead["conv2"]]
    assert not model.get_layer("conv2").get_weights()[0][:, :, [1, 5]][..., live2].any()
    assert not model.get_layer("conv3").get_weights()[0][:, :, dead["conv2"]].any()
    assert model.get_layer("conv1").get_weights()[0][..., [1, 5]].std() > 0


def test_self_ensemble_scores_higher_than_one_pass(tmp_path, shared_data, capsys):
    """The shipped x3 model with its 8 flips/rotations averaged (EDSR's "+"), through the CLI."""
    from srcnn.evaluate import default_weights, main as evaluate_main

    plain = evaluate(default_weights(3), shared_data / "Set5", 3)
    out = tmp_path / "plus.json"
    assert evaluate_main(["--data", str(shared_data / "Set5"), "--scale", "3", "--self-ensemble",
                          "--json", str(out)]) == 0
    plus = json.loads(out.read_text())
    assert plus["self_ensemble"] is True and "self-ensemble x8" in capsys.readouterr().out
    assert "self_ensemble" not in plain
    assert plus["psnr"] > plain["psnr"] + 0.02
    assert all(p["psnr"] > q["psnr"] for p, q in zip(plus["per_image"], plain["per_image"]))


@pytest.mark.parametrize("decay", ["cosine", "constant"])
def test_warmup_ramps_from_zero_then_follows_the_schedule(decay):
    from srcnn.config import SRCNNConfig
    from srcnn.train import make_optimizer

    config = SRCNNConfig(optimizer="adam", lr_decay=decay, steps=1000, warmup_steps=100)
    opt = make_optimizer(config, 2e-4)
    rates = {}
    for step in (0, 50, 100, 550, 1000):
        opt.iterations.assign(step)
        rates[step] = float(opt.learning_rate)
    assert rates[0] == 0 and rates[50] == pytest.approx(1e-4) and rates[100] == pytest.approx(2e-4)
    if decay == "cosine":  # half-way through the 900 decay steps, and the floor at the end
        assert rates[550] == pytest.approx(2e-4 * (0.01 + 0.99 * 0.5), rel=1e-4)
        assert rates[1000] == pytest.approx(2e-6, rel=1e-3)
    else:
        assert rates[550] == rates[1000] == pytest.approx(2e-4)
    no_warmup = make_optimizer(SRCNNConfig(optimizer="adam", lr_decay=decay, steps=1000), 2e-4)
    no_warmup.iterations.assign(0)
    assert float(no_warmup.learning_rate) == pytest.approx(2e-4)


def _config(args):
    from srcnn.config import PRESETS, SRCNNConfig
    from srcnn.train import config_from_args, parse_args

    parsed = parse_args(args)
    return config_from_args(parsed, SRCNNConfig, PRESETS[parsed.preset])


def test_a_run_checkpointed_before_the_step_object_resumes_with_its_state(tmp_path, shared_data):
    from srcnn.train import build

    run = tmp_path / "run"
    shutil.copytree(OLD_RUN / "checkpoints", run / "checkpoints")
    args = tiny_run_args(write_training_images(tmp_path / "train"), shared_data / "Set5", run) + ["--steps", "3"]
    trainer, _ = build(_config(args), run, progress=False)
    assert trainer.resumed_from == 2
    saved = np.load(OLD_RUN / "state.npz")
    restored = {f"model/{i}": w for i, w in enumerate(trainer.checkpoint.model.get_weights())}
    for name in ("body_optimizer", "last_optimizer"):  # conv1+conv2 / conv3: the two learning rates
        restored.update({f"{name}/{i}": np.asarray(v.numpy())
                         for i, v in enumerate(getattr(trainer.checkpoint, name).variables)})
    assert sorted(restored) == sorted(saved.files)
    for key in saved.files:  # weights, iterations and Adam moments, to the bit
        np.testing.assert_array_equal(restored[key], saved[key], err_msg=key)
    assert trainer.fit()["step"] == 3
    assert [h["step"] for h in trainer.history] == [3]


def _checkpoint_values(run: Path) -> dict:
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run / "checkpoints")))
    names = [n for n, _ in tf.train.list_variables(str(run / "checkpoints"))]
    # (not the save count, nor the object graph, which holds the optimizers' Python names)
    return {n: reader.get_tensor(n) for n in names if not n.startswith(("save_counter", "_CHECKPOINTABLE"))}


def test_a_run_killed_with_sigkill_resumes_bit_exact(tmp_path):
    """kill -9 during training, resume: the weights after two more steps equal those of a run
    stopped cleanly at the killed run's last checkpoint and resumed the same way."""
    data = write_training_images(tmp_path / "train")

    def args(run, steps):  # constant rate: the schedule must not depend on --steps
        return tiny_run_args(data, data, run) + [
            "--lr-decay", "constant", "--validate-every", "100000", "--steps", str(steps)]

    killed, clean = tmp_path / "killed", tmp_path / "clean"
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "srcnn.train", *args(killed, 100_000)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (killed / "checkpoints" / "checkpoint").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint from the run"
            time.sleep(0.05)
        time.sleep(0.3)  # kill it in the middle of training, maybe while it writes a checkpoint
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    step = int(tf.train.latest_checkpoint(str(killed / "checkpoints")).rsplit("-", 1)[1])
    assert step >= 2

    assert train_main(args(clean, step)) == 0
    assert _checkpoint_values(clean).keys() == _checkpoint_values(killed).keys()
    for run in (killed, clean):
        assert train_main(args(run, step + 2)) == 0
    after_kill, after_stop = _checkpoint_values(killed), _checkpoint_values(clean)
    assert int(after_kill["step/.ATTRIBUTES/VARIABLE_VALUE"]) == step + 2
    for name, value in after_stop.items():
        np.testing.assert_array_equal(after_kill[name], value, err_msg=name)
