import json
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.training import Trainer, TrainingCollapsed, TrainingDiverged, global_average


def build(run_dir, total_steps, validate=None, validate_every=None, poison_step=None,
          checkpoint_every=2, guard=None, loss_guard=None):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    opt = keras.optimizers.Adam(1e-2)
    calls = tf.Variable(0, dtype=tf.int64)

    def step_fn(batch):
        x, y = batch
        calls.assign_add(1)
        with tf.GradientTape() as tape:
            loss = global_average(tf.square(model(x)[:, 0] - y), 8)
            if poison_step is not None:
                loss = loss * tf.where(calls >= poison_step, np.nan, 1.0)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return {"mse": loss}

    def make_dataset(start_step, ctx):
        rng = np.random.default_rng(start_step)
        x = rng.normal(size=(256, 4)).astype("float32")
        y = x @ np.array([1.0, -2.0, 0.5, 3.0], "float32")
        return tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(8)

    trainer = Trainer(run_dir, step_fn, make_dataset, {"model": model, "optimizer": opt},
                      total_steps=total_steps, checkpoint_every=checkpoint_every, log_every=1,
                      validate=validate, validate_every=validate_every, config={"lr": 1e-2},
                      progress=False, guard=guard, loss_guard=loss_guard)
    return trainer, model, opt


def test_run_resumes_at_saved_step(tmp_path):
    trainer, model, opt = build(tmp_path, 5)
    result = trainer.fit()
    assert result["step"] == 5 and not result["stopped"]
    saved = [w.copy() for w in model.get_weights()]
    assert json.loads((tmp_path / "config.json").read_text()) == {"lr": 1e-2}

    trainer2, model2, opt2 = build(tmp_path, 8)
    assert trainer2.resumed_from == 5
    for a, b in zip(saved, model2.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(opt2.iterations.numpy()) == 5  # optimizer state restored too
    assert trainer2.fit()["step"] == 8
    steps = [json.loads(l)["step"] for l in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))


def test_interrupt_saves_and_resumes(tmp_path):
    def interrupt(step):
        # What Ctrl-C runs: the handler fit() installed for SIGINT. (A real signal sent to this pytest
        # process segfaults it once OpenVINO's runtime has been loaded by earlier tests; the CLIs'
        # own Ctrl-C handling is tested in subprocesses, tests/common/test_folder_run.py.)
        handler = signal.getsignal(signal.SIGINT)
        assert callable(handler) and handler not in (signal.default_int_handler, signal.SIG_IGN)
        handler(signal.SIGINT, None)
        return {"psnr": float(step)}, None

    trainer, model, _ = build(tmp_path, 50, validate=interrupt, validate_every=3, checkpoint_every=100)
    result = trainer.fit()
    assert result["stopped"] and result["step"] == 3
    trainer2, _, _ = build(tmp_path, 50)
    assert trainer2.resumed_from == 3


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    trainer, _, _ = build(tmp_path, 20, poison_step=6)
    with pytest.raises(TrainingDiverged, match="mse became nan at step 6"):
        trainer.fit()
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("-4")


def test_best_checkpoint_follows_validation(tmp_path):
    scores = {2: 10.0, 4: 30.0, 6: 20.0}
    trainer, model, _ = build(tmp_path, 6, validate=lambda s: ({"psnr": scores[s]}, None),
                              validate_every=2)
    trainer.fit()
    assert json.loads((tmp_path / "best.json").read_text())["step"] == 4
    assert trainer.restore_best()


def test_export_history_ships_the_runs_curves_beside_the_model(tmp_path):
    from common.training import export_history, history_path

    run = tmp_path / "run"
    run.mkdir()
    (run / "validation.jsonl").write_text('{"step": 10, "psnr_x3": 30.5}\n{"step": 20, "psnr_x3": 31.0}\n')
    (run / "history.jsonl").write_text('{"step": 5, "mse": 0.01}\n\n{"step": 10, "mse": 0.008}\n')
    path = export_history(run, tmp_path / "srcnn_x3.h5", key="psnr_x3")
    assert path == history_path(tmp_path / "srcnn_x3.weights.h5") == tmp_path / "srcnn_x3.history.json"
    curves = json.loads(path.read_text())
    assert [(v["step"], v["psnr"]) for v in curves["validation"]] == [(10, 30.5), (20, 31.0)]
    assert [h["mse"] for h in curves["loss"]] == [0.01, 0.008]


def test_guard_validates_the_start_and_stops_at_a_collapse_keeping_the_last_passed_checkpoint(tmp_path):
    from common.chapter import collapse_guard

    psnr = {0: 28.0, 2: 27.5, 4: 27.0, 6: 24.0, 8: 26.0}  # step 6 is 4 dB below the start
    trainer, _, _ = build(tmp_path, 8, validate=lambda s: ({"psnr": psnr[s], "colour_shift": 0.0}, None),
                          validate_every=2, checkpoint_every=2, guard=collapse_guard(3.0, 0.02))
    with pytest.raises(TrainingCollapsed, match=r"PSNR 24.00 dB, 4.00 dB below the start's 28.00 .* at step 6"):
        trainer.fit()
    steps = [json.loads(line)["step"] for line in (tmp_path / "validation.jsonl").read_text().splitlines()]
    assert steps == [0, 2, 4, 6]
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("-4")


def test_guard_judges_colour_drift_against_the_start():
    from common.chapter import collapse_guard

    guard = collapse_guard(3.0, 0.02)
    start = {"psnr": 28.0, "colour_shift": 0.01}
    assert guard({"psnr": 27.0, "colour_shift": 0.025}, start) is None
    assert "colour" in guard({"psnr": 27.0, "colour_shift": 0.035}, start)
    assert guard({"psnr": 24.9, "colour_shift": 0.0}, None) is None  # no start: nothing to compare


def test_loss_guard_stops_when_the_discriminator_wins_outright(tmp_path):
    from common.chapter import saturation_guard

    guard = saturation_guard(1e-4, patience=3)
    assert guard({"d_real": 0.99999, "d_fake": 1e-5}) is None
    assert guard({"d_real": 0.9, "d_fake": 1e-5}) is None  # the streak restarts
    assert guard({"d_real": 0.99999, "d_fake": 1e-5}) is None
    assert guard({"d_real": 0.99999, "d_fake": 1e-5}) is None
    assert "discriminator won" in guard({"d_real": 0.99999, "d_fake": 1e-5})

    trainer, _, _ = build(tmp_path, 20, loss_guard=lambda means: "too good" if means["mse"] < 1e9 else None)
    with pytest.raises(TrainingCollapsed, match="too good at step 1"):
        trainer.fit()


def test_guarded_run_needs_checkpoints_at_validated_steps(tmp_path):
    with pytest.raises(ValueError, match="multiple of validate_every"):
        build(tmp_path, 8, validate=lambda s: ({"psnr": 1.0}, None), validate_every=3, checkpoint_every=2,
              guard=lambda m, s: None)


def test_colour_shift_is_the_largest_channel_mean_difference():
    from common.chapter import colour_shift

    lr = np.full((4, 4, 3), 0.5)
    sr = np.full((16, 16, 3), 0.5) + np.array([0.0, 0.03, -0.01])
    assert colour_shift(lr, sr) == pytest.approx(0.03)
    assert colour_shift(lr, np.full((16, 16, 3), 0.5)) == 0.0
