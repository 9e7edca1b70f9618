"""Step-counted training harness shared by every chapter.

A chapter gives a per-replica `step_fn(batch) -> {name: scalar}` (gradients and optimizer
updates inside), the objects to checkpoint (models, optimizers, RNGs) and a dataset factory.
The harness adds what every long run needs:

* resume from the run directory's latest checkpoint (``tf.train.CheckpointManager``, whose
  index file is replaced atomically), saved every `checkpoint_every` steps, at the end and on
  Ctrl-C / SIGTERM (the step in flight finishes first);
* a progress bar with ETA, TensorBoard scalars and sample images under ``run_dir/logs``;
* validation every `validate_every` steps with the best result kept (``run_dir/best``);
* a stop with a clear message when a loss becomes NaN/Inf, keeping the last good checkpoint;
* `tf.distribute`: models and optimizers must be created under ``strategy.scope()``; the
  dataset comes from ``distribute_datasets_from_function``; only the chief writes.

Distribution details: `step_fn` runs once per replica on that replica's part of the global batch
(it must scale losses by the global batch, e.g. `global_average`). Only the chief writes the run
directory and validates; other workers save their (required) checkpoint copies to a scratch
folder that is removed when `fit` ends, and every worker resumes from the chief's checkpoints
(so the run directory must be on a file system all workers see). Each step all workers agree
on stopping (Ctrl-C / SIGTERM on any of them), so they stop and save at the same step.
Batch-normalisation moving statistics are averaged over replicas after every step (Keras
updates each replica's copy from its own batch), which keeps all copies identical.
"""
import hashlib
import itertools
import json
import math
import shutil
import signal
import tempfile
import weakref
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

import common  # noqa: F401
from common.files import write_json


class TrainingCollapsed(RuntimeError):
    """A guard saw the model being wrecked (quality falling off a cliff, colour drift, D winning
    outright); the message is one line naming the last good checkpoint."""


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf."""


def make_strategy(name: str = "default", devices=None) -> tf.distribute.Strategy:
    """default | mirrored | multiworker (configured by TF_CONFIG).

    "mirrored" uses `devices`, else every local GPU, else every logical CPU device (one unless
    the CPU was split with `tf.config.set_logical_device_configuration`).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if devices is None and not tf.config.list_logical_devices("GPU"):
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return _new_mirrored_strategy(devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}: default, mirrored or multiworker")


_mirrored_count = itertools.count(1)


def _new_mirrored_strategy(devices) -> tf.distribute.MirroredStrategy:
    """A MirroredStrategy whose collective ops use keys no earlier strategy of this process used.

    Every MirroredStrategy numbers its all-reduces from the same group and instance keys
    (group 1, instance 100, ...), and the TensorFlow runtime remembers each key's tensor shape
    for the life of the process; so a second strategy whose all-reduces differ in shape from
    the first one's failed with "Shape mismatch in the collective instance 100" (tensorflow
    issue #62790). TensorFlow's own tests avoid it the same way, by raising the class's
    `_collective_key_base` for each strategy; the replicas of one MirroredStrategy live in this
    process, so the offset needs no agreement with anything outside it.
    """
    cls = tf.distribute.MirroredStrategy
    saved = cls._collective_key_base
    cls._collective_key_base = saved + 100_000 * next(_mirrored_count)
    try:
        return cls(devices)
    finally:
        cls._collective_key_base = saved


def _cluster(strategy: tf.distribute.Strategy):
    """(task_type, task_id, cluster dict), or None outside a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None) or getattr(
        strategy.extended, "_cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    return (resolver.task_type, resolver.task_id, cluster) if cluster else None


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    cluster = _cluster(strategy)
    if cluster is None:
        return True
    task_type, task_id, spec = cluster
    return task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in spec)


def _scratch_dir(run_dir: Path, strategy) -> Path:
    """A non-chief worker's checkpoint folder: fixed per (run, task), emptied when reused."""
    task_type, task_id, _ = _cluster(strategy)
    key = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"sr-{task_type}{task_id}-{key}"
    shutil.rmtree(path, ignore_errors=True)  # left by a killed worker
    path.mkdir(parents=True)
    return path


def moving_statistics(*objects) -> list:
    """Moving mean/variance variables of the trainable, unsynchronised BN layers in `objects`.

    Under a multi-replica strategy Keras updates each replica's copy from that replica's batch
    (the variables have no aggregation), so the copies drift apart; see `average_over_replicas`.
    """
    found, seen = [], set()

    def walk(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if (isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
                and not getattr(layer, "synchronized", False)):
            found.extend(v for v in (layer.moving_mean, layer.moving_variance) if v is not None)
        for child in getattr(layer, "layers", []) or []:
            walk(child)

    for obj in objects:
        if isinstance(obj, keras.layers.Layer):
            walk(obj)
    return found


def average_over_replicas(variables) -> None:
    """In replica context (inside `strategy.run`, after the update): set every replica's copy
    of `variables` to their mean over all replicas of all workers. No-op with one replica."""
    context = tf.distribute.get_replica_context()
    if not variables or context is None or context.num_replicas_in_sync == 1:
        return
    means = context.all_reduce(tf.distribute.ReduceOp.MEAN,
                               [tf.identity(v.value if isinstance(v, keras.Variable) else v) for v in variables])
    for v, m in zip(variables, means):
        v.assign(m)


def global_average(per_example_loss, global_batch_size: int):
    """Mean over the global batch (correct gradient scale under any strategy)."""
    return tf.nn.compute_average_loss(per_example_loss, global_batch_size=global_batch_size)


def num_replicas() -> int:
    """Replicas in sync, from a replica or the cross-replica context (1 without a strategy)."""
    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context
        return tf.distribute.get_strategy().num_replicas_in_sync
    return context.num_replicas_in_sync


class GeneratorTrainer(keras.Model):
    """A generator trained alone on one loss (SRResNet pretraining, ESRGAN's PSNR stage).

    `loss(target, sr)` is a mean over the replica's batch; it is divided by the number of replicas
    before differentiation (the optimizer sums replicas' gradients), so updates follow the global
    batch mean. `to_output_range` maps HR [0, 1] to the generator's output range. The step
    returns {metric: loss}.
    """

    def __init__(self, generator, loss, metric: str = "loss", to_output_range=None, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.loss_fn = loss
        self.metric = metric
        self.to_output_range = to_output_range

    def compile(self, g_optimizer, **kwargs):
        super().compile(optimizer=None, **kwargs)
        self.g_optimizer = g_optimizer
        g_optimizer.build(self.generator.trainable_variables)

    def call(self, lr, training=False):
        return self.generator(lr, training=training)

    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        lr, hr = data[0], data[1]
        target = self.to_output_range(hr) if self.to_output_range else hr
        with tf.GradientTape() as tape:
            loss = self.loss_fn(target, self.generator(lr, training=True))
            scaled = loss / num_replicas()
        weights = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(scaled, weights), weights))
        return {self.metric: loss}


class AdversarialModel(keras.Model):
    """Base of the two-network GANs (SRGAN, ESRGAN): `compile(g_optimizer, d_optimizer)` and the
    generator as the model's forward pass; subclasses write `train_step`."""

    def __init__(self, generator, discriminator, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        super().compile(optimizer=None, **kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        # Slot variables now (in the caller's strategy scope, before any checkpoint restore).
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)

    def call(self, lr, training=False):
        return self.generator(lr, training=training)


def read_jsonl(path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def history_path(model_path) -> Path:
    """X.h5 -> X.history.json (the training curves shipped beside an exported model)."""
    path = Path(model_path)
    return path.with_name(path.name.removesuffix(".h5").removesuffix(".weights") + ".history.json")


def export_history(run_dir, model_path, key: str = "psnr") -> Path:
    """Write the run's curves beside an exported model: {"validation": [{"step", "psnr", ...}],
    "loss": [{"step", <loss>: ...}]}; `key` is the validation metric renamed to "psnr"."""
    validation = [{**v, "psnr": v[key]} for v in read_jsonl(Path(run_dir) / "validation.jsonl") if key in v]
    path = history_path(model_path)
    write_json(path, {"validation": validation, "loss": read_jsonl(Path(run_dir) / "history.jsonl")})
    return path


class Trainer:
    """Runs `step_fn` for `total_steps` steps with checkpoints, validation and logging.

    make_dataset(start_step, input_context) -> tf.data.Dataset of per-replica batches; the
    start step lets a resumed run draw new random crops instead of replaying the old ones.
    validate(step) -> ({metric: value}, {image_name: HxWx3 array in [0,1]}); the first metric
    (e.g. "psnr") decides the best checkpoint (higher is better).
    """

    def __init__(
        self,
        run_dir,
        step_fn: Callable,
        make_dataset: Callable,
        trackables: dict,
        total_steps: int,
        strategy: tf.distribute.Strategy | None = None,
        checkpoint_every: int = 1000,
        log_every: int = 100,
        validate_every: int | None = None,
        validate: Callable | None = None,
        config=None,
        max_to_keep: int = 2,
        progress: bool = True,
        guard: Callable | None = None,
        loss_guard: Callable | None = None,
    ):
        """`run_dir` is written by the chief only; `trackables` are checkpointed (and their BN
        moving statistics kept equal over replicas); `validate` runs on the chief only.

        `guard(metrics, start_metrics)` -> None or a reason to stop: a new run is validated at step 0
        and every later validation is judged against that; checkpoints are then written only at
        validated steps (`checkpoint_every` a multiple of `validate_every`), so the latest one has
        passed. `loss_guard(logged_means)` -> None or a reason, judged at every log."""
        if guard is not None and (not validate or not validate_every or checkpoint_every % validate_every):
            raise ValueError("a guarded run validates at every checkpoint: checkpoint_every must be a "
                             f"multiple of validate_every ({checkpoint_every}, {validate_every})")
        self.guard, self.loss_guard = guard, loss_guard
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = is_chief(self.strategy)
        self.run_dir = Path(run_dir)
        self.total_steps = int(total_steps)
        self.checkpoint_every, self.log_every = checkpoint_every, log_every
        self.validate_every, self.validate = validate_every, validate
        self.progress = progress
        self._step_fn, self._make_dataset = step_fn, make_dataset
        self._stop_requested = False
        self._statistics = moving_statistics(*trackables.values())

        # Non-chief workers write their (required) checkpoint copies to a scratch folder.
        self.scratch_dir = None if self.chief else _scratch_dir(self.run_dir, self.strategy)
        if self.scratch_dir is not None:
            weakref.finalize(self, shutil.rmtree, str(self.scratch_dir), True)
        write_dir = self.scratch_dir or self.run_dir
        if self.chief:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if config is not None:
                write_json(self.run_dir / "config.json", config)
        with self.strategy.scope():
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(step=self.step, **trackables)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(write_dir / "checkpoints"), max_to_keep=max_to_keep,
            step_counter=self.step,
        )
        self.best_manager = tf.train.CheckpointManager(
            self.checkpoint, str(write_dir / "best"), max_to_keep=1, checkpoint_name="best"
        )
        # Every worker resumes from the chief's checkpoints.
        latest = tf.train.latest_checkpoint(str(self.run_dir / "checkpoints"))
        if latest:
            self.checkpoint.restore(latest)
        self._saved_step = int(self.step.numpy()) if latest else None
        self._check_same_start()
        self.best = self._read_best()
        self.writer = (
            tf.summary.create_file_writer(str(self.run_dir / "logs")) if self.chief
            else tf.summary.create_noop_writer()
        )
        self.history: list[dict] = []

    # --- bookkeeping --------------------------------------------------------------------
    @property
    def resumed_from(self) -> int:
        return int(self.step.numpy())

    def _read_best(self) -> dict | None:
        path = self.run_dir / "best.json"
        return json.loads(path.read_text()) if path.exists() else None

    def save(self) -> str:
        path = self.manager.save(checkpoint_number=int(self.step.numpy()))
        self._saved_step = int(self.step.numpy())
        return path

    def _request_stop(self, signum, frame):
        self._stop_requested = True

    def close(self) -> None:
        """Remove a non-chief worker's scratch checkpoints (done at the end of `fit`)."""
        if self.scratch_dir is not None:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)

    # --- agreement between workers ------------------------------------------------------
    def _all_workers_sum(self, value: float) -> float:
        """Sum over all replicas of every worker of this worker's `value` (one all-reduce)."""
        if self.strategy.num_replicas_in_sync == 1:
            return float(value)
        if not hasattr(self, "_sum_fn"):
            strategy = self.strategy

            @tf.function
            def total(x):
                out = strategy.run(lambda v: tf.distribute.get_replica_context().all_reduce(
                    tf.distribute.ReduceOp.SUM, tf.identity(v)), args=(x,))
                return strategy.experimental_local_results(out)[0]

            self._sum_fn = total
        return float(self._sum_fn(tf.constant(float(value))))

    def _check_same_start(self):
        """Workers that cannot see the chief's checkpoints would silently train apart."""
        if _cluster(self.strategy) is None:
            return
        step = int(self.step.numpy())
        mean = self._all_workers_sum(step) / self.strategy.num_replicas_in_sync
        if mean != step:
            raise RuntimeError(
                f"workers start from different steps (this one {step}, mean {mean:g}): every "
                f"worker must see the chief's {self.run_dir / 'checkpoints'} (a shared file system)")

    # --- the loop -----------------------------------------------------------------------
    def _distributed_step(self):
        strategy, statistics = self.strategy, self._statistics

        def replica_step(batch, stop):
            results = dict(self._step_fn(batch))
            average_over_replicas(statistics)
            context = tf.distribute.get_replica_context()
            results["_stop"] = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.identity(stop))
            return results

        @tf.function
        def run(batch, stop):
            results = strategy.run(replica_step, args=(batch, stop))
            return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                    for k, v in results.items()}

        return run

    def _log(self, step: int, means: dict):
        with self.writer.as_default(step=step):
            for k, v in means.items():
                tf.summary.scalar(f"train/{k}", v)
        self.history.append({"step": step, **means})
        if self.chief:
            with open(self.run_dir / "history.jsonl", "a") as f:
                f.write(json.dumps({"step": step, **means}) + "\n")

    def _run_validation(self, step: int):
        """The chief validates; every worker saves a best checkpoint when the chief's improves."""
        metrics, improved = {}, False
        if self.chief:
            metrics, images = self.validate(step)
            with self.writer.as_default(step=step):
                for k, v in metrics.items():
                    tf.summary.scalar(f"val/{k}", v)
                for name, img in (images or {}).items():
                    tf.summary.image(f"samples/{name}", np.clip(img, 0, 1)[None], max_outputs=1)
            key = next(iter(metrics))
            improved = self.best is None or metrics[key] > self.best[key]
        if _cluster(self.strategy) is not None:
            improved = self._all_workers_sum(float(improved)) > 0
        if improved:
            self.best_manager.save(checkpoint_number=step)
        if self.chief:
            if improved:
                self.best = {"step": step, **{k: float(v) for k, v in metrics.items()}}
                write_json(self.run_dir / "best.json", self.best)
            with open(self.run_dir / "validation.jsonl", "a") as f:
                f.write(json.dumps({"step": step, **{k: float(v) for k, v in metrics.items()}}) + "\n")
        return metrics

    def _start_metrics(self) -> dict | None:
        """The validation at step 0 (guarded runs), from validation.jsonl."""
        records = read_jsonl(self.run_dir / "validation.jsonl") if (self.run_dir / "validation.jsonl").exists() else []
        return next((r for r in records if r["step"] == 0), None)

    def _collapsed(self, reason: str, step: int, last_good) -> TrainingCollapsed:
        return TrainingCollapsed(f"{reason} at step {step}; stopped; last good checkpoint kept: {last_good or 'none'}")

    def fit(self) -> dict:
        """Train up to `total_steps`; returns {"step", "stopped", "best", "last"}."""
        start = int(self.step.numpy())
        if start >= self.total_steps:
            self.close()
            return {"step": start, "stopped": False, "best": self.best, "last": None}
        if start and self.chief and self.progress:
            print(f"resuming from step {start} ({self.run_dir})")
        dataset = self.strategy.distribute_datasets_from_function(
            lambda ctx: self._make_dataset(start, ctx)
        )
        iterator = iter(dataset)
        step_fn = self._distributed_step()
        if self.guard is not None and start == 0 and self._start_metrics() is None:
            self._run_validation(0)
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in previous:
            signal.signal(s, self._request_stop)

        try:
            return self._fit(start, step_fn, iterator)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.close()

    def _fit(self, start: int, step_fn, iterator) -> dict:
        bar = None
        if self.progress and self.chief:
            from tqdm import tqdm

            bar = tqdm(total=self.total_steps, initial=start, unit="step", dynamic_ncols=True)
        sums: dict = {}
        count, last = 0, None
        last_good = self.manager.latest_checkpoint
        # One process stops at once; workers of a cluster stop together after the step in
        # which any of them was asked to (the request travels with the step's all-reduce).
        alone = _cluster(self.strategy) is None
        stop = False
        try:
            while int(self.step.numpy()) < self.total_steps and not (stop or alone and self._stop_requested):
                results = step_fn(next(iterator), tf.constant(float(self._stop_requested)))
                stop = float(results.pop("_stop")) > 0
                values = {k: float(v) for k, v in results.items()}
                bad = [k for k, v in values.items() if not math.isfinite(v)]
                if bad:
                    raise TrainingDiverged(
                        f"loss {bad[0]} became {values[bad[0]]} at step {int(self.step.numpy()) + 1}; "
                        f"stopped; last good checkpoint kept: {last_good or 'none'}"
                    )
                self.step.assign_add(1)
                step = int(self.step.numpy())
                last = values
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
                if step % self.log_every == 0 or step == self.total_steps:
                    means = {k: v / count for k, v in sums.items()}
                    self._log(step, means)
                    sums, count = {}, 0
                    reason = self.loss_guard(means) if self.loss_guard else None
                    if reason:
                        raise self._collapsed(reason, step, last_good)
                if self.validate and self.validate_every and (
                    step % self.validate_every == 0 or step == self.total_steps
                ):
                    metrics = self._run_validation(step)
                    if bar is not None:
                        bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
                    reason = self.guard(metrics, self._start_metrics()) if self.guard and self.chief else None
                    if self.guard and _cluster(self.strategy) is not None and \
                            self._all_workers_sum(float(bool(reason))) > 0:
                        reason = reason or "the chief's guard stopped the run"
                    if reason:
                        raise self._collapsed(reason, step, last_good)
                if step % self.checkpoint_every == 0:
                    last_good = self.save()
        finally:
            if bar is not None:
                bar.close()
        step = int(self.step.numpy())
        if self._saved_step != step:  # the same decision on every worker
            self.save()
        self._stop_requested = self._stop_requested or stop
        if self._stop_requested and self.chief:
            print(f"interrupted: checkpoint saved at step {step}; run again to resume")
        self.writer.flush()
        return {"step": step, "stopped": self._stop_requested, "best": self.best, "last": last}

    def restore_best(self) -> bool:
        """Load the best validated weights into the tracked objects (False if none)."""
        path = tf.train.latest_checkpoint(str(self.run_dir / "best"))
        if path:
            self.checkpoint.restore(path).expect_partial()
        return bool(path)
