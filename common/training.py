"""Step-counted training harness shared by every chapter.

A chapter gives a step object (`TrainStep`: its per-replica `train_step(batch) -> {name:
scalar}`, gradients and optimizer updates inside, and its `trackables`, the models, optimizers
and RNGs a checkpoint holds) and a dataset factory; a bare `step_fn` with the trackables beside
it works too. The harness adds what every long run needs:

* resume from the run directory's latest checkpoint (``tf.train.CheckpointManager``, whose
  index file is replaced atomically), saved every `checkpoint_every` steps, at the end and on
  Ctrl-C / SIGTERM (the step in flight finishes first);
* a progress bar with ETA, TensorBoard scalars and sample images under ``run_dir/logs``;
* validation every `validate_every` steps with the best result kept (``run_dir/best``);
* a stop with a clear message when a loss becomes NaN/Inf, keeping the last good checkpoint;
* `tf.distribute`: models and optimizers must be created under ``strategy.scope()``; the
  dataset comes from ``distribute_datasets_from_function``; only the chief writes.

Without a run directory (`run_dir=None`) the run is kept in memory: no checkpoints, no resume,
no files, and Ctrl-C raises KeyboardInterrupt as usual (a study's short runs, esrgan.ablation).

Distribution details: `step_fn` runs once per replica on that replica's part of the global batch
(it must scale losses by the global batch, e.g. `global_average`). Only the chief writes the run
directory and validates; other workers save their (required) checkpoint copies to a scratch
folder that is removed when `fit` ends, and every worker resumes from the chief's checkpoints
(so the run directory must be on a file system all workers see). Each step all workers agree
on stopping (Ctrl-C / SIGTERM on any of them), so they stop and save at the same step.
Batch-normalisation moving statistics are averaged over replicas after every step (Keras
updates each replica's copy from its own batch), which keeps all copies identical.
"""
import bisect
import hashlib
import itertools
import json
import math
import shutil
import signal
import tempfile
import weakref
from pathlib import Path
from typing import Callable, Iterable, Protocol

import keras
import numpy as np
import tensorflow as tf

import common  # noqa: F401
from common.files import atomic_write_bytes, write_json
from common.losses import r1_penalty


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
    returns {metric: loss}. A `TrainStep`: hand it to the Trainer as it is.
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

    @property
    def trackables(self) -> dict:
        return {"generator": self.generator, "g_optimizer": self.g_optimizer}

    @property
    def metric_names(self) -> tuple:
        return (self.metric,)

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
    generator as the model's forward pass; subclasses write `train_step`. A `TrainStep`.

    `r1_weight`: gamma of the R1 penalty gamma/2 * E|grad D(HR)|^2 (Mescheder et al., 2018) that a
    subclass adds to its discriminator's loss with `score_real` and `with_r1` (0: off, the papers)."""

    def __init__(self, generator, discriminator, r1_weight: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if r1_weight < 0:
            raise ValueError(f"r1_weight must be >= 0, not {r1_weight}")
        self.generator = generator
        self.discriminator = discriminator
        self.r1_weight = float(r1_weight)

    def score_real(self, hr):
        """(D's logits of `hr`, the unweighted R1 penalty or None when off); call it inside the
        discriminator's gradient tape."""
        if not self.r1_weight:
            return self.discriminator(hr, training=True), None
        return r1_penalty(self.discriminator, hr)

    def with_r1(self, d_loss, r1):
        """The discriminator's loss to minimise: `d_loss` plus r1_weight / 2 times the penalty."""
        return d_loss if r1 is None else d_loss + 0.5 * self.r1_weight * r1

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        super().compile(optimizer=None, **kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        # Slot variables now (in the caller's strategy scope, before any checkpoint restore).
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)

    @property
    def trackables(self) -> dict:
        return {"generator": self.generator, "g_optimizer": self.g_optimizer,
                "discriminator": self.discriminator, "d_optimizer": self.d_optimizer}

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


def _constant_learning_rates(trackables: dict) -> dict:
    """{name: (learning-rate variable, its value now)} of the optimizers with a constant rate."""
    rates = {}
    for name, obj in trackables.items():
        variable = getattr(obj, "_learning_rate", None) if isinstance(obj, keras.optimizers.Optimizer) else None
        if isinstance(variable, keras.Variable):  # not a schedule
            rates[name] = (variable, float(keras.ops.convert_to_numpy(variable)))
    return rates


class TrainStep(Protocol):
    """What the Trainer runs. `train_step(batch)` -> {metric: scalar}, once per replica on its
    part of the global batch, updates inside. `trackables`: {name: model, optimizer, RNG, ...},
    what a checkpoint holds; the names are the checkpoint's keys, so they must not change between
    versions (a run resumes by them). A step may also name `metric_names`, the figures the
    Trainer logs of what train_step returns (default: all of them)."""

    trackables: dict

    def train_step(self, batch) -> dict: ...


def is_better(record: dict, best: dict | None, metric: str, mode: str = "max",
              within: tuple[str, float] | None = None) -> bool:
    """Whether validation `record` beats `best` (None: nothing yet) on `metric`, the highest with
    `mode` "max", the lowest with "min". `within` = (name, bound): records whose `name` is at most
    `bound` beat every record whose is not (a GAN stage's NIQE may only be bought with a limited
    false colour); between two records outside it the lower `name` wins. A record without `name`
    counts as outside (a best kept before the measure existed)."""
    if metric not in record:
        return False
    if best is None or metric not in best:
        return True
    if within is not None:
        name, bound = within
        inside, best_inside = (r.get(name, math.inf) <= bound for r in (record, best))
        if inside != best_inside:
            return inside
        if not inside:
            return record.get(name, math.inf) < best.get(name, math.inf)
    return record[metric] < best[metric] if mode == "min" else record[metric] > best[metric]


def choose_best(records: Iterable[dict], metric: str, mode: str = "max",
                within: tuple[str, float] | None = None) -> dict | None:
    """The record the Trainer keeps as best after validating `records` in order (see is_better)."""
    best = None
    for record in records:
        if is_better(record, best, metric, mode, within):
            best = record
    return best


class Trainer:
    """Runs a step object (or `step_fn`) for `total_steps` steps with checkpoints, validation and
    logging.

    make_dataset(start_step, input_context) -> tf.data.Dataset of per-replica batches; the
    start step lets a resumed run draw new random crops instead of replaying the old ones.
    validate(step) -> ({metric: value}, {image_name: HxWx3 array in [0,1]}); the first metric
    (e.g. "psnr") decides the best checkpoint (higher is better).
    """

    def __init__(
        self,
        run_dir,
        step: TrainStep | Callable,
        make_dataset: Callable,
        trackables: dict | None = None,
        total_steps: int | None = None,
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
        best_metric: str | None = None,
        best_mode: str = "max",
        best_within: tuple[str, float] | None = None,
        run_eagerly: bool = False,
        description: str | None = None,
        steps_per_call: int = 1,
        hooks: Iterable[tuple[Iterable[int], Callable[[int], None]]] = (),
        tensorboard: bool = True,
        deterministic: bool = True,
    ):
        """`step`: a `TrainStep`, or a bare `step_fn(batch)` with its `trackables`. `run_dir` is
        written by the chief only (None: nothing is written, see the module notes); the trackables
        are checkpointed (and their BN moving statistics kept equal over replicas); `validate` runs
        on the chief only.

        `guard(metrics, start_metrics)` -> None or a reason to stop: a new run is validated at step 0
        and every later validation is judged against that; checkpoints are then written only at
        validated steps (`checkpoint_every` a multiple of `validate_every`), so the latest one has
        passed. `loss_guard(logged_means)` -> None or a reason, judged at every log.

        `best_metric` (default: the first metric validate returns) decides the best checkpoint, the
        highest with `best_mode` "max", the lowest with "min" (e.g. NIQE); `best_within` = (metric,
        bound) prefers the steps whose metric is at most bound (see is_better).

        An optimizer's constant learning rate is part of its checkpoint; a resumed run uses the
        rate it was built with (the run's config), so a changed `--lr` takes effect.

        `deterministic` turns on TensorFlow's op determinism for the whole process
        (tf.config.experimental.enable_op_determinism): without it, two runs resumed from one
        checkpoint drift apart at full size, so a resumed run would not equal an uninterrupted one.

        `run_eagerly`: no tf.function (tracing a large step can cost more than a short run);
        `description` labels the progress bar and the messages of a stopped run.
        `steps_per_call` > 1 runs that many steps in one graph call (tiny networks, whose steps
        are dominated by Python); a call ends at the next hook, validation or checkpoint, so those
        happen at the same steps, and a NaN is still reported at its step. Logs come from the
        figures every step returns, so they end no call: `log_every=1` keeps each step's figures
        in `history` and calls keep their length. A stop request is seen between calls.

        `hooks`: (steps, fn) pairs; `fn(step)` runs after each of those steps, on every worker,
        outside the graph: an evaluation at chosen steps, a schedule that changes a variable
        between steps. It runs after the step's log and before its validation and checkpoint, so
        the checkpoint holds what it changed; a resumed run does not repeat the hooks of the
        steps before its start.

        `tensorboard=False`: no TensorBoard logs in the run directory (a tiny network logged every
        step, whose summaries would cost more than its steps)."""
        if steps_per_call < 1:
            raise ValueError(f"steps_per_call must be at least 1, not {steps_per_call}")
        # the commands check these in their configs first (common.config_cli.check_settings)
        if checkpoint_every < 1 or log_every < 1:
            raise ValueError(f"checkpoint_every and log_every must be at least 1, not {checkpoint_every}, {log_every}")
        if validate_every is not None and validate_every < 0:
            raise ValueError(f"validate_every must be at least 0, not {validate_every}")
        if deterministic:
            tf.config.experimental.enable_op_determinism()
        self.steps_per_call = int(steps_per_call)
        self.hooks = [(sorted(set(int(s) for s in steps)), fn) for steps, fn in hooks]
        if total_steps is None:
            raise TypeError("Trainer needs total_steps")
        step_fn = getattr(step, "train_step", step)
        trackables = getattr(step, "trackables", None) if trackables is None else trackables
        if trackables is None:
            raise TypeError("Trainer needs the step's trackables (a TrainStep, or step_fn with trackables)")
        self._metric_names = getattr(step, "metric_names", None)
        self.run_eagerly, self.description = run_eagerly, description
        if guard is not None and (not validate or not validate_every
                                  or run_dir is not None and checkpoint_every % validate_every):
            raise ValueError("a guarded run validates at every checkpoint: checkpoint_every must be a "
                             f"multiple of validate_every ({checkpoint_every}, {validate_every})")
        if best_mode not in ("max", "min"):
            raise ValueError(f"best_mode must be 'max' or 'min', not {best_mode!r}")
        self.guard, self.loss_guard = guard, loss_guard
        self.best_metric, self.best_mode, self.best_within = best_metric, best_mode, best_within
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = is_chief(self.strategy)
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.total_steps = int(total_steps)
        self.checkpoint_every, self.log_every = checkpoint_every, log_every
        self.validate_every, self.validate = validate_every, validate
        self.progress = progress
        self._step_fn, self._make_dataset = step_fn, make_dataset
        self._stop_requested = False
        self._statistics = moving_statistics(*trackables.values())
        self.writes = self.chief and self.run_dir is not None  # this process writes the run folder

        # Non-chief workers write their (required) checkpoint copies to a scratch folder.
        self.scratch_dir = None
        if not self.chief and self.run_dir is not None:
            self.scratch_dir = _scratch_dir(self.run_dir, self.strategy)
            weakref.finalize(self, shutil.rmtree, str(self.scratch_dir), True)
        write_dir = self.scratch_dir or self.run_dir
        if self.writes:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if config is not None:
                write_json(self.run_dir / "config.json", config)
        with self.strategy.scope():
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(step=self.step, **trackables)
        self.manager = self.best_manager = latest = None
        if write_dir is not None:
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
            rates = _constant_learning_rates(trackables)
            self.checkpoint.restore(latest)
            self._keep_learning_rates(rates)
        self._saved_step = int(self.step.numpy()) if latest else None
        if self.writes:
            self._drop_logs_after(-1 if self._saved_step is None else self._saved_step)
        self._check_same_start()
        self.best = self._read_best()
        self.writer = (
            tf.summary.create_file_writer(str(self.run_dir / "logs")) if self.writes and tensorboard
            else tf.summary.create_noop_writer()
        )
        self.history: list[dict] = []
        self.validations: list[dict] = []

    # --- bookkeeping --------------------------------------------------------------------
    @property
    def resumed_from(self) -> int:
        return int(self.step.numpy())

    def _drop_logs_after(self, step: int):
        """Forget the log lines of steps a resumed run repeats (those after its checkpoint), so
        history.jsonl and validation.jsonl hold each step once."""
        for name in ("history.jsonl", "validation.jsonl"):
            path = self.run_dir / name
            records = read_jsonl(path)
            kept = [r for r in records if r["step"] <= step]
            if len(kept) < len(records):
                atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in kept).encode())

    def _keep_learning_rates(self, rates: dict):
        for name, (variable, value) in rates.items():
            restored = float(keras.ops.convert_to_numpy(variable))
            if restored != value:
                variable.assign(value)
                if self.chief and self.progress:
                    print(f"{name}: learning rate {value:g} (the checkpoint's was {restored:g})")

    def _is_better(self, metrics: dict) -> bool:
        key = self.best_metric or next(iter(metrics))
        return is_better(metrics, self.best, key, self.best_mode, self.best_within)

    def _read_best(self) -> dict | None:
        path = None if self.run_dir is None else self.run_dir / "best.json"
        return json.loads(path.read_text()) if path is not None and path.exists() else None

    def save(self) -> str | None:
        """Write a checkpoint of the current step (None: the run keeps no checkpoints)."""
        if self.manager is None:
            return None
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
        strategy, statistics, names = self.strategy, self._statistics, self._metric_names

        def replica_step(batch, stop):
            results = dict(self._step_fn(batch))
            if names is not None:
                missing = [k for k in names if k not in results]
                if missing:
                    raise ValueError(f"train_step returned no {', '.join(missing)} (it returns {', '.join(results)})")
                results = {k: results[k] for k in names}
            average_over_replicas(statistics)
            context = tf.distribute.get_replica_context()
            results["_stop"] = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.identity(stop))
            return results

        def run(batch, stop):
            results = strategy.run(replica_step, args=(batch, stop))
            return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                    for k, v in results.items()}

        def run_many(iterator, n, stop):
            """`n` steps in one call, no Python between them: {name: the n steps' values}."""
            first = run(next(iterator), stop)
            keys = tuple(first)
            arrays = tuple(tf.TensorArray(first[k].dtype, size=n).write(0, first[k]) for k in keys)
            for i in tf.range(1, n):
                out = run(next(iterator), stop)
                arrays = tuple(a.write(i, out[k]) for a, k in zip(arrays, keys))
            return {k: a.stack() for k, a in zip(keys, arrays)}

        compile_ = (lambda f: f) if self.run_eagerly else tf.function
        if self.steps_per_call == 1:
            one = compile_(run)
            return lambda iterator, n, stop: [one(next(iterator), stop)]
        many = compile_(run_many)

        def call(iterator, n, stop):  # -> [{name: value} per step]
            arrays = {k: v.numpy() for k, v in many(iterator, tf.constant(n), stop).items()}
            return [{k: a[i] for k, a in arrays.items()} for i in range(n)]

        return call

    def _call_size(self, step: int) -> int:
        """Steps in the next call: up to `steps_per_call`, ending at the next hook, validation or
        checkpoint (or the last step), so that those happen at the same steps as one by one."""
        every = (self.validate_every if self.validate else None,
                 self.checkpoint_every if self.manager is not None else None)
        marks = [self.total_steps] + [(step // e + 1) * e for e in every if e]
        for steps, _ in self.hooks:
            later = bisect.bisect_right(steps, step)
            marks += steps[later:later + 1]
        return max(1, min(self.steps_per_call, min(marks) - step))

    def _log(self, step: int, means: dict):
        with self.writer.as_default(step=step):
            for k, v in means.items():
                tf.summary.scalar(f"train/{k}", v)
        self.history.append({"step": step, **means})
        if self.writes:
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
            improved = self._is_better(metrics)
        if _cluster(self.strategy) is not None:
            improved = self._all_workers_sum(float(improved)) > 0
        if improved and self.best_manager is not None:
            self.best_manager.save(checkpoint_number=step)
        if self.chief:
            record = {"step": step, **{k: float(v) for k, v in metrics.items()}}
            self.validations.append(record)
            if improved:
                self.best = record
        if self.writes:
            if improved:
                write_json(self.run_dir / "best.json", self.best)
            with open(self.run_dir / "validation.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
        return metrics

    def _start_metrics(self) -> dict | None:
        """The validation at step 0 (guarded runs), from validation.jsonl (or this run's memory)."""
        records = self.validations if self.run_dir is None else read_jsonl(self.run_dir / "validation.jsonl")
        return next((r for r in records if r["step"] == 0), None)

    def _stopped(self, what: str, last_good) -> str:
        """The one-line message of a stopped run; `description` names the run when there is one."""
        kept = "(no checkpoints kept)" if self.manager is None else f"last good checkpoint kept: {last_good or 'none'}"
        return f"{self.description + ': ' if self.description else ''}{what}; stopped; {kept}"

    def _collapsed(self, reason: str, step: int, last_good) -> TrainingCollapsed:
        return TrainingCollapsed(self._stopped(f"{reason} at step {step}", last_good))

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
        # Ctrl-C / SIGTERM save a checkpoint; without checkpoints they keep their usual meaning.
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if self.manager is not None else {}
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

            bar = tqdm(total=self.total_steps, initial=start, unit="step", dynamic_ncols=True, desc=self.description)
        self._sums, self._count, last = {}, 0, None  # the figures since the last log
        last_good = self.manager and self.manager.latest_checkpoint
        # One process stops at once; workers of a cluster stop together after the step in
        # which any of them was asked to (the request travels with the step's all-reduce).
        alone = _cluster(self.strategy) is None
        stop = False
        try:
            while int(self.step.numpy()) < self.total_steps and not (stop or alone and self._stop_requested):
                n = self._call_size(int(self.step.numpy()))
                for results in step_fn(iterator, n, tf.constant(float(self._stop_requested))):
                    stop = stop or float(results.pop("_stop")) > 0
                    last = {k: float(v) for k, v in results.items()}
                    last_good = self._after_step(last, bar, last_good)
        finally:
            if bar is not None:
                bar.close()
        step = int(self.step.numpy())
        if self._saved_step != step and self.manager is not None:  # the same decision on every worker
            self.save()
        self._stop_requested = self._stop_requested or stop
        if self._stop_requested and self.chief:
            print(f"interrupted: checkpoint saved at step {step}; run again to resume")
        self.writer.flush()
        return {"step": step, "stopped": self._stop_requested, "best": self.best, "last": last}

    def _after_step(self, values: dict, bar, last_good):
        """One step's bookkeeping: NaN stop, step count, progress, logs, validation, guards and
        checkpoints. Returns the last good checkpoint."""
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            raise TrainingDiverged(self._stopped(
                f"loss {bad[0]} became {values[bad[0]]} at step {int(self.step.numpy()) + 1}", last_good))
        self.step.assign_add(1)
        step = int(self.step.numpy())
        for k, v in values.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        self._count += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
        if step % self.log_every == 0 or step == self.total_steps:
            means = {k: v / self._count for k, v in self._sums.items()}
            self._log(step, means)
            self._sums, self._count = {}, 0
            reason = self.loss_guard(means) if self.loss_guard else None
            if reason:
                raise self._collapsed(reason, step, last_good)
        for steps, fn in self.hooks:
            at = bisect.bisect_left(steps, step)
            if at < len(steps) and steps[at] == step:
                fn(step)
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
        return last_good

    def restore_best(self) -> bool:
        """Load the best validated weights into the tracked objects (False if none)."""
        path = self.run_dir and tf.train.latest_checkpoint(str(self.run_dir / "best"))
        if path:
            self.checkpoint.restore(path).expect_partial()
        return bool(path)
