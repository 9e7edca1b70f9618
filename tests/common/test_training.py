import json
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.training import Trainer, TrainingCollapsed, TrainingDiverged, global_average


def build(run_dir, total_steps, validate=None, validate_every=None, poison_step=None,
          checkpoint_every=2, guard=None, loss_guard=None, lr=1e-2, **trainer_args):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    opt = keras.optimizers.Adam(lr)
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
                      progress=False, guard=guard, loss_guard=loss_guard, **trainer_args)
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



def test_a_run_resumed_after_a_kill_logs_each_step_once(tmp_path):
    build(tmp_path, 4, validate=lambda s: ({"psnr": float(s)}, None), validate_every=2)[0].fit()
    # killed after logging steps 5-6 and validating 6, before their checkpoint
    with open(tmp_path / "history.jsonl", "a") as f:
        f.write('{"step": 5, "mse": 9.0}\n{"step": 6, "mse": 9.0}\n')
    with open(tmp_path / "validation.jsonl", "a") as f:
        f.write('{"step": 6, "psnr": 99.0}\n')
    trainer, _, _ = build(tmp_path, 7, validate=lambda s: ({"psnr": float(s)}, None), validate_every=2)
    trainer.fit()
    history = [json.loads(l) for l in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == list(range(1, 8)) and 9.0 not in [h["mse"] for h in history]
    validated = [json.loads(l) for l in (tmp_path / "validation.jsonl").read_text().splitlines()]
    assert [(v["step"], v["psnr"]) for v in validated] == [(2, 2.0), (4, 4.0), (6, 6.0), (7, 7.0)]

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


def test_best_checkpoint_can_be_the_lowest_of_a_metric(tmp_path):
    scores = {2: 6.0, 4: 9.0, 6: 5.5, 8: 7.0}
    trainer, _, _ = build(tmp_path, 8, validate=lambda s: ({"psnr": 30.0 - s, "niqe": scores[s]}, None),
                          validate_every=2, best_metric="niqe", best_mode="min")
    trainer.fit()
    assert json.loads((tmp_path / "best.json").read_text())["step"] == 6


def test_a_resumed_run_trains_at_its_configured_learning_rate(tmp_path):
    build(tmp_path, 2, lr=1e-2)[0].fit()
    trainer, _, opt = build(tmp_path, 4, lr=1e-3)
    assert trainer.resumed_from == 2 and int(opt.iterations.numpy()) == 2  # the rest is restored
    assert float(opt.learning_rate.numpy()) == pytest.approx(1e-3)
    trainer, _, opt = build(tmp_path, 4, lr=1e-2)
    assert float(opt.learning_rate.numpy()) == pytest.approx(1e-2)


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


class LinearStep:
    """A step object (TrainStep): the linear model of `build`, with a figure it does not log."""

    metric_names = ("mse",)

    def __init__(self, lr=1e-2):
        keras.utils.set_random_seed(0)
        self.model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        self.optimizer = keras.optimizers.Adam(lr)
        self.optimizer.build(self.model.trainable_variables)
        self.trackables = {"model": self.model, "optimizer": self.optimizer}
        self.eager = []

    def train_step(self, batch):
        x, y = batch
        self.eager.append(tf.executing_eagerly())
        with tf.GradientTape() as tape:
            loss = global_average(tf.square(self.model(x)[:, 0] - y), 8)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        return {"mse": loss, "debug": tf.reduce_max(x)}


def checkpoint_names(run_dir) -> set:
    """The names of the objects the run's latest checkpoint holds (its object graph's root)."""
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run_dir / "checkpoints")))
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    return {child.local_name for child in graph.nodes[0].children}


def linear_data(start_step, ctx):
    rng = np.random.default_rng(start_step)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = x @ np.array([1.0, -2.0, 0.5, 3.0], "float32")
    return tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(8)


def test_a_step_object_trains_like_its_step_fn_and_checkpoints_its_trackables(tmp_path):
    step = LinearStep()
    trainer = Trainer(tmp_path / "object", step, linear_data, total_steps=4, checkpoint_every=2, log_every=1,
                      progress=False)
    assert trainer.fit()["step"] == 4
    assert [sorted(h) for h in trainer.history] == [["mse", "step"]] * 4  # only its metric_names
    assert checkpoint_names(tmp_path / "object") == {"model", "optimizer", "step", "save_counter"}

    reference, _, _ = build(tmp_path / "fn", 4)  # the same model, data and update as a bare step_fn
    reference.fit()
    for a, b in zip(reference.checkpoint.model.get_weights(), step.model.get_weights()):
        np.testing.assert_array_equal(a, b)

    again = LinearStep()
    resumed = Trainer(tmp_path / "object", again, linear_data, total_steps=6, progress=False)
    assert resumed.resumed_from == 4 and int(again.optimizer.iterations.numpy()) == 4


def test_a_step_must_return_its_metric_names(tmp_path):
    step = LinearStep()
    step.metric_names = ("mse", "psnr")
    trainer = Trainer(tmp_path, step, linear_data, total_steps=2, progress=False)
    with pytest.raises(ValueError, match="train_step returned no psnr"):
        trainer.fit()
    with pytest.raises(TypeError, match="trackables"):
        Trainer(tmp_path, step.train_step, linear_data, total_steps=2)


@pytest.fixture
def default_sigint():
    """Ctrl-C with its default meaning, as in a terminal (a shell starting the tests in the background
    passes SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_without_run_dir_nothing_is_written_and_ctrl_c_keeps_its_meaning(tmp_path, monkeypatch, default_sigint):
    monkeypatch.chdir(tmp_path)
    handlers = []

    def validate(step):
        handlers.append(signal.getsignal(signal.SIGINT))
        return {"psnr": float(step)}, None

    step = LinearStep()
    trainer = Trainer(None, step, linear_data, total_steps=4, checkpoint_every=2, validate=validate,
                      validate_every=2, progress=False)
    result = trainer.fit()
    assert result["step"] == 4 and not result["stopped"] and set(result["last"]) == {"mse"}
    assert result["best"] == {"step": 4, "psnr": 4.0} and not trainer.restore_best()
    assert handlers == [signal.default_int_handler] * 2  # no checkpoint to save: Ctrl-C stops as usual
    assert trainer.manager is None and trainer.save() is None
    assert list(tmp_path.iterdir()) == []
    assert step.eager == [False]  # traced once


def test_a_run_without_checkpoints_says_so_when_it_diverges():
    class Poisoned(LinearStep):
        def train_step(self, batch):
            out = super().train_step(batch)
            return {"mse": out["mse"] * tf.where(self.optimizer.iterations >= 3, np.nan, 1.0)}

    trainer = Trainer(None, Poisoned(), linear_data, total_steps=5, progress=False, description="pretrain")
    with pytest.raises(TrainingDiverged, match=r"^pretrain: loss mse became nan at step 3; stopped; "
                                               r"\(no checkpoints kept\)$"):
        trainer.fit()


def test_run_eagerly_gives_the_traced_run_s_numbers():
    traced, eager = LinearStep(), LinearStep()
    Trainer(None, traced, linear_data, total_steps=3, progress=False).fit()
    Trainer(None, eager, linear_data, total_steps=3, progress=False, run_eagerly=True).fit()
    assert eager.eager == [True] * 3 and traced.eager == [False]
    for a, b in zip(traced.model.get_weights(), eager.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_the_chapters_keras_trainers_are_step_objects(tmp_path):
    from common.training import AdversarialModel, GeneratorTrainer

    keras.utils.set_random_seed(0)
    generator = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(3, 3, padding="same")])
    model = GeneratorTrainer(generator, lambda hr, sr: tf.reduce_mean(tf.abs(hr - sr)), metric="l1")
    model.compile(keras.optimizers.Adam(1e-3))
    assert model.trackables == {"generator": generator, "g_optimizer": model.g_optimizer}
    x = tf.random.stateless_uniform((16, 8, 8, 3), (1, 2))
    trainer = Trainer(tmp_path, model, lambda start, ctx: tf.data.Dataset.from_tensor_slices((x, x)).repeat().batch(4),
                      total_steps=2, progress=False)
    assert set(trainer.fit()["last"]) == {"l1"}
    # the names chapter.generator_session checkpoints
    assert checkpoint_names(tmp_path) == {"generator", "g_optimizer", "step", "save_counter"}

    disc = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(1)])
    gan = AdversarialModel(generator, disc)
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    assert set(gan.trackables) == {"generator", "g_optimizer", "discriminator", "d_optimizer"}


def test_several_steps_per_call_train_and_log_as_one_by_one(tmp_path):
    one, many = LinearStep(), LinearStep()
    args = dict(total_steps=7, checkpoint_every=4, log_every=2, progress=False,
                validate=lambda s: ({"psnr": float(s)}, None), validate_every=3)
    Trainer(tmp_path / "one", one, linear_data, **args).fit()
    trainer = Trainer(tmp_path / "many", many, linear_data, steps_per_call=5, **args)
    # up to the next validation (3, 6), checkpoint (4) or the end; logs end no call
    assert [trainer._call_size(s) for s in (0, 2, 3, 4, 6)] == [3, 1, 1, 2, 1]
    trainer.fit()
    assert many.eager == [False] * 2  # one graph for all calls (the loop body and the first step)
    for a, b in zip(one.model.get_weights(), many.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    for name in ("history.jsonl", "validation.jsonl"):
        assert (tmp_path / "one" / name).read_text() == (tmp_path / "many" / name).read_text()
    assert sorted(p.name for p in (tmp_path / "many" / "checkpoints").glob("*.index")) == ["ckpt-4.index",
                                                                                          "ckpt-7.index"]
    free = Trainer(None, LinearStep(), linear_data, total_steps=10, log_every=100, steps_per_call=4, progress=False)
    assert [free._call_size(s) for s in (0, 4, 8)] == [4, 4, 2]


def test_a_nan_inside_a_call_of_several_steps_is_reported_at_its_step(tmp_path):
    class Poisoned(LinearStep):
        def train_step(self, batch):
            out = super().train_step(batch)
            return {"mse": out["mse"] * tf.where(self.optimizer.iterations == 6, np.nan, 1.0)}

    trainer = Trainer(tmp_path, Poisoned(), linear_data, total_steps=20, checkpoint_every=4, log_every=4,
                      steps_per_call=4, progress=False)
    with pytest.raises(TrainingDiverged, match="nan at step 6; stopped; last good checkpoint kept: .*ckpt-4$"):
        trainer.fit()


def test_hooks_run_after_their_steps_and_before_the_checkpoint(tmp_path):
    """A hook sees the model after its step, in a run of several steps per call as one by one,
    and what it changes is in that step's checkpoint."""

    def run(run_dir, steps_per_call):
        step = LinearStep()
        marker = tf.Variable(0.0)
        step.trackables = {**step.trackables, "marker": marker}
        seen = []

        def hook(at):
            seen.append((at, int(step.optimizer.iterations.numpy()), step.model.get_weights()[1].copy()))
            marker.assign(float(at))

        trainer = Trainer(run_dir, step, linear_data, total_steps=7, checkpoint_every=4, log_every=1,
                          steps_per_call=steps_per_call, progress=False, hooks=[([2, 4, 5, 30], hook)])
        assert [trainer._call_size(s) for s in (0, 2, 4, 5)] == [min(2, steps_per_call), min(2, steps_per_call),
                                                                   1, min(2, steps_per_call)]
        trainer.fit()
        return seen, trainer

    many, trainer = run(tmp_path / "many", steps_per_call=6)
    one, _ = run(tmp_path / "one", steps_per_call=1)
    assert [(at, iterations) for at, iterations, _ in many] == [(2, 2), (4, 4), (5, 5)]
    for (_, _, a), (_, _, b) in zip(many, one, strict=True):
        np.testing.assert_array_equal(a, b)
    assert [h["step"] for h in trainer.history] == list(range(1, 8))  # log_every=1: every step's figures
    restored = tf.train.Checkpoint(marker=tf.Variable(0.0))
    restored.restore(str(tmp_path / "many" / "checkpoints" / "ckpt-4")).expect_partial()
    assert float(restored.marker.numpy()) == 4.0  # the hook at step 4 ran before its checkpoint


def test_a_trainer_turns_on_op_determinism_unless_told_not_to(tmp_path):
    # Full-size runs resumed twice from one checkpoint drifted apart without it, so bit-exact resume needs it.
    from tensorflow.python.framework import config as tf_config

    was_on = tf_config.is_op_determinism_enabled()
    try:
        tf_config.disable_op_determinism()
        build(None, 2, deterministic=False)
        assert not tf_config.is_op_determinism_enabled()
        trainer, _, _ = build(None, 2)
        assert tf_config.is_op_determinism_enabled()
        assert trainer.fit()["step"] == 2  # the step's ops run under it
    finally:
        (tf_config.enable_op_determinism if was_on else tf_config.disable_op_determinism)()


# --- a GAN stage's best step: the lowest NIQE within a false-colour bound ------------------------

def test_choose_best_is_the_lowest_niqe_within_the_false_colour_bound():
    from common.training import choose_best

    records = [{"step": 2, "niqe": 5.0, "false_colour": 1.4},   # lowest NIQE, too colourful
               {"step": 4, "niqe": 6.0, "false_colour": 0.9},
               {"step": 6, "niqe": 5.5, "false_colour": 1.0},   # on the bound: allowed
               {"step": 8, "niqe": 7.0, "false_colour": 0.2}]
    assert choose_best(records, "niqe", "min", ("false_colour", 1.0))["step"] == 6
    assert choose_best(records, "niqe", "min", ("false_colour", 0.5))["step"] == 8
    assert choose_best(records, "niqe", "min")["step"] == 2  # NIQE alone
    # none within: the lowest false colour, whatever its NIQE
    assert choose_best(records, "niqe", "min", ("false_colour", 0.1))["step"] == 8
    assert choose_best(records[:3], "niqe", "min", ("false_colour", 0.1))["step"] == 4
    # the order of validation does not matter
    assert choose_best(records[::-1], "niqe", "min", ("false_colour", 1.0))["step"] == 6
    # a best kept before false colour was measured yields to any measured step
    assert choose_best([{"step": 1, "niqe": 1.0}, records[0]], "niqe", "min", ("false_colour", 1.0))["step"] == 2


def test_trainer_keeps_the_lowest_niqe_within_the_false_colour_bound(tmp_path):
    from common.training import choose_best

    niqe = {2: 5.0, 4: 6.0, 6: 5.5, 8: 7.0}
    colour = {2: 1.4, 4: 0.9, 6: 1.2, 8: 0.3}
    validate = lambda s: ({"psnr": 30.0, "niqe": niqe[s], "false_colour": colour[s]}, None)  # noqa: E731
    trainer, _, _ = build(tmp_path / "a", 8, validate=validate, validate_every=2, best_metric="niqe",
                          best_mode="min", best_within=("false_colour", 1.0))
    trainer.fit()
    best = json.loads((tmp_path / "a" / "best.json").read_text())
    assert best["step"] == 4 and best == choose_best(trainer.validations, "niqe", "min", ("false_colour", 1.0))
    assert tf.train.latest_checkpoint(str(tmp_path / "a" / "best")).endswith("-4")
    # no step within the bound: the lowest false colour
    trainer, _, _ = build(tmp_path / "b", 8, validate=validate, validate_every=2, best_metric="niqe",
                          best_mode="min", best_within=("false_colour", 0.2))
    trainer.fit()
    assert json.loads((tmp_path / "b" / "best.json").read_text())["step"] == 8


def test_export_without_a_step_within_the_bound_says_so(tmp_path, capsys):
    from types import SimpleNamespace

    from common.chapter import Session, fit_and_export

    colour = {2: 1.4, 4: 1.2, 6: 1.3}
    validate = lambda s: ({"psnr": 30.0, "niqe": 9.0 - s, "false_colour": colour[s]}, None)  # noqa: E731
    trainer, model, opt = build(tmp_path / "run", 6, validate=validate, validate_every=2, best_metric="niqe",
                                best_mode="min", best_within=("false_colour", 1.0))
    session = Session(SimpleNamespace(val_data="Set5"), trainer, model, model, opt)
    fit_and_export(session, tmp_path / "run", tmp_path / "g.h5", lambda step, psnr: {"steps": step}, best=True,
                   display="toy", progress=False)
    meta = json.loads((tmp_path / "g.json").read_text())
    assert meta["steps"] == 4 and meta["val_false_colour"] == 1.2 and meta["val_niqe"] == 5.0
    assert "lowest false colour" in meta["checkpoint_choice"]
    assert "lowest false colour" in capsys.readouterr().out  # said even without progress output


@pytest.fixture(scope="module")
def niqe_data(tmp_path_factory):
    from tests.synthetic import sinusoid_folders

    # validation images large enough for two of NIQE's 96x96 blocks
    return sinusoid_folders(tmp_path_factory.mktemp("fc_data"), 200, 200, max_freq=6, amplitude=0.3, noise=0.05)


def _tiny_gan_run(data, run_dir, export, max_false_colour):
    from dataclasses import replace

    from esrgan import train as esrgan_train
    from esrgan.config import PRESETS

    config = replace(PRESETS["tiny"], train_data=(str(data / "train"),), val_data=str(data / "val"), stage="gan",
                     perceptual="disc-features", steps=2, lr_milestones=(), validate_every=1, checkpoint_every=1,
                     max_psnr_drop=100.0, max_colour_shift=1.0, max_false_colour=max_false_colour)
    esrgan_train.train(config, run_dir, init=None, export=export, vgg_weights=None, progress=False)
    records = [json.loads(line) for line in (run_dir / "validation.jsonl").read_text().splitlines()]
    return records, json.loads((run_dir / "best.json").read_text()), json.loads(export.with_suffix(".json").read_text())


def test_a_tiny_gan_stage_exports_the_step_the_false_colour_rule_chooses(niqe_data, tmp_path):
    from common.training import choose_best

    bound = 0.5
    records, best, meta = _tiny_gan_run(niqe_data, tmp_path / "run", tmp_path / "g.h5", bound)
    assert [r["step"] for r in records] == [0, 1, 2] and all(r["false_colour"] >= 0 for r in records)
    assert best == choose_best(records, "niqe", "min", ("false_colour", bound))
    assert meta["steps"] == best["step"] and meta["val_false_colour"] == pytest.approx(best["false_colour"])
    assert meta["val_niqe"] == pytest.approx(best["niqe"])
    assert ("checkpoint_choice" in meta) == all(r["false_colour"] > bound for r in records)
