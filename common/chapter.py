"""What the SRGAN and ESRGAN trainers share: a generator run's session, its first weights (--init),
its validation, its export and their common command-line flags.

Each chapter's `train.py` keeps only what differs: networks, losses, schedules and its metadata.
"""
import argparse
import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

import common  # noqa: F401  (quiet TensorFlow import)
from common.checkpoints import CheckpointError
from common.config_cli import (CommandParser, SettingError, add_config_arguments, check_checkpoint,
                               check_data_folder)
from common.data import train_dataset
from common.evaluate import evaluate_model
from common.paths import DATA, resolve_data
from common.training import Trainer, TrainingCollapsed, TrainingDiverged, export_history, read_jsonl
from common.vgg import VGGWeightsUnavailable


class InitError(ValueError):
    """The --init weights cannot be loaded into the generator; the message is one line."""


@dataclass
class Session:
    """Everything one training run is made of (see each chapter's `build`)."""

    config: Any  # the chapter's frozen config dataclass
    trainer: Trainer
    model: keras.Model  # the generator-only trainer or the GAN
    generator: keras.Model
    g_optimizer: keras.optimizers.Optimizer
    discriminator: keras.Model | None = None
    d_optimizer: keras.optimizers.Optimizer | None = None
    init: str | None = None  # where the generator's first weights came from


def run_checkpoint(run_dir: Path) -> str | None:
    """A training run's best checkpoint, else its latest one."""
    return (tf.train.latest_checkpoint(str(run_dir / "best"))
            or tf.train.latest_checkpoint(str(run_dir / "checkpoints")))


def has_checkpoints(run_dir) -> bool:
    """Whether `run_dir` holds a run to resume (its checkpoints replace any --init weights)."""
    return tf.train.latest_checkpoint(str(Path(run_dir) / "checkpoints")) is not None


def init_generator(generator, init) -> str:
    """Load generator weights from an exported checkpoint or a run folder; returns the source."""
    path = Path(init)
    if path.is_dir():
        ckpt = run_checkpoint(path)
        if ckpt is None:
            raise InitError(f"--init {init}: no checkpoint in that run folder")
        try:
            status = tf.train.Checkpoint(generator=generator).restore(ckpt).expect_partial()
            status.assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as exc:
            first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            raise InitError(f"--init {ckpt}: not a matching generator ({first})") from None
        return ckpt
    from common.checkpoints import CheckpointError, load_model

    try:
        source, _ = load_model(path)
    except CheckpointError as exc:
        raise InitError(f"--init: {exc}") from None
    shapes = [tuple(w.shape) for w in source.weights]
    if shapes != [tuple(w.shape) for w in generator.weights]:
        raise InitError(f"--init {init}: its architecture differs from the generator being trained "
                        "(check --num-filters / --num-blocks and the other architecture flags)")
    generator.set_weights(source.get_weights())
    # Same weights, other layers (an output activation, say) would train a different network.
    probe = np.random.default_rng(0).uniform(0, 1, (1, 12, 12, source.input_shape[-1])).astype("float32")
    if not np.allclose(source(probe, training=False), generator(probe, training=False), atol=1e-4):
        raise InitError(f"--init {init}: same weight shapes but different outputs: the generator being "
                        "trained differs from it (an output activation such as tanh?)")
    return str(path)


def init_discriminator(discriminator, source) -> str:
    """Load a discriminator (its weights and batch-norm statistics) from a training run folder's
    latest checkpoint, or from a `.weights.h5` file; returns the checkpoint used. A GAN stage that
    goes on from an exported generator otherwise starts with a new discriminator."""
    path = Path(source)
    if path.is_dir():
        ckpt = tf.train.latest_checkpoint(str(path / "checkpoints"))
        if ckpt is None:
            raise InitError(f"--init-discriminator {source}: no checkpoint in that run folder")
        try:
            status = tf.train.Checkpoint(discriminator=discriminator).restore(ckpt).expect_partial()
            status.assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as exc:
            first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            raise InitError(f"--init-discriminator {ckpt}: not a matching discriminator ({first})") from None
        return ckpt
    if not path.name.endswith(".weights.h5") or not path.is_file():
        raise InitError(f"--init-discriminator {source}: not a run folder or a .weights.h5 file")
    try:
        with warnings.catch_warnings():  # Keras warns of layers it leaves unloaded: that is a mismatch too
            warnings.simplefilter("error", UserWarning)
            discriminator.load_weights(path)
    except (ValueError, OSError, UserWarning) as exc:
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise InitError(f"--init-discriminator {source}: not a matching discriminator ({first})") from None
    return str(path)


def first_weights(run_dir: Path, generator, init, progress: bool = True) -> str | None:
    """Where the generator's first weights come from: a resumed run keeps its own record (its
    checkpoint wins over --init); a new run loads --init if given."""
    if has_checkpoints(run_dir):
        previous = run_dir / "config.json"
        return json.loads(previous.read_text()).get("init") if previous.exists() else None
    if not init:
        return None
    source = init_generator(generator, init)
    if progress:
        print(f"generator initialised from {source}")
    return source


def colour_shift(lr, sr) -> float:
    """Largest per-channel difference of the mean colour of SR and its LR input (0-1 units); an
    upscaler keeps the mean, a generator drifting in colour does not."""
    lr = np.asarray(lr, np.float64).reshape(-1, np.shape(lr)[-1])
    sr = np.asarray(sr, np.float64).reshape(-1, np.shape(sr)[-1])
    return float(np.max(np.abs(sr.mean(axis=0) - lr.mean(axis=0))))


def generator_validation(generator, meta: dict, val_dir, config, name: str, perceptual: bool = False) -> Callable:
    """validate(step) for the Trainer: PSNR/SSIM on `val_dir` in inference mode, the mean colour
    shift and false colour (and with `perceptual` the mean NIQE, as esrgan.evaluate computes it) of the outputs,
    plus the outputs of `config.val_samples` (or the first image) for TensorBoard."""

    def validate(step):
        from common.inference import upscale

        outputs, shifts = [], []

        def upscale_fn(lr):
            outputs.append(upscale(lr, generator, meta))
            shifts.append(colour_shift(lr, outputs[-1]))
            return outputs[-1]

        result = evaluate_model(upscale_fn, val_dir, config.scale, config.degradation, name=name)
        metrics = {"psnr": result["psnr"], "ssim": result["ssim"], "colour_shift": float(np.mean(shifts)),
                   "false_colour": result["false_colour"]}
        if perceptual:
            from common.metrics import niqe

            scores = []
            for out in outputs:
                try:
                    scores.append(niqe(np.clip(np.round(out * 255), 0, 255).astype(np.uint8), crop_border=config.scale))
                except ValueError:  # too small for NIQE's 96x96 blocks
                    pass
            if scores:
                metrics["niqe"] = float(np.mean(scores))
        names = [r["name"] for r in result["per_image"]]
        chosen = [i for i, n in enumerate(names) if n in config.val_samples] or [0]
        return metrics, {names[i]: outputs[i] for i in chosen}

    return validate


def collapse_guard(max_psnr_drop: float, max_colour_shift: float) -> Callable:
    """guard(metrics, start) for the Trainer: a reason when validation PSNR fell more than
    `max_psnr_drop` dB below the start's, or the colour shift grew by more than `max_colour_shift`."""

    def guard(metrics, start):
        if start is not None and metrics["psnr"] < start["psnr"] - max_psnr_drop:
            return (f"generator collapsed: validation PSNR {metrics['psnr']:.2f} dB, {start['psnr'] - metrics['psnr']:.2f} dB "
                    f"below the start's {start['psnr']:.2f} (limit {max_psnr_drop:g} dB)")
        before = 0.0 if start is None else start.get("colour_shift", 0.0)
        if metrics.get("colour_shift", 0.0) - before > max_colour_shift:
            return (f"generator collapsed: its mean colour is {metrics['colour_shift']:.3f} off the input's "
                    f"({before:.3f} at the start; limit {max_colour_shift:g} more)")
        return None

    return guard


def saturation_guard(limit: float, patience: int = 3, real: str = "d_real", fake: str = "d_fake") -> Callable:
    """loss_guard(means) for the Trainer: a reason once the discriminator has won outright
    (mean D(HR) > 1 - limit and D(SR) < limit) in `patience` logs in a row; `limit` 0 turns it off."""
    count = [0]

    def guard(means):
        if not limit or real not in means or fake not in means:
            return None
        won = means[real] > 1.0 - limit and means[fake] < limit
        count[0] = count[0] + 1 if won else 0
        if count[0] >= patience:
            return (f"discriminator won outright: D(HR) {means[real]:.5f}, D(SR) {means[fake]:.2g} "
                    f"in {patience} logs in a row (the generator gets no useful gradient)")
        return None

    return guard


def generator_session(config, run_dir, strategy, model, trackables: dict, init, *, name: str, meta: dict,
                      batch_size: int, run_config: dict, progress: bool = True, guarded: bool = False) -> Session:
    """The end of a chapter's `build`: the generator's first weights, the training data, the
    validation on `config.val_data` and the Trainer (resumed from `run_dir` if it holds a run).
    `trackables` holds "generator" and "g_optimizer" (and "discriminator", "d_optimizer" for a GAN);
    `meta` is the checkpoint metadata validation upscales with; `run_config` goes to config.json.
    `guarded` (GAN stages): validation adds NIQE, the best step is the lowest NIQE among those within
    `config.max_false_colour`, and `config.max_psnr_drop`, `max_colour_shift`
    and `d_saturation` stop a run that wrecks its generator (common.training.TrainingCollapsed);
    with `config.ema_decay` the weight average of the generator is validated and exported."""
    run_dir = Path(run_dir)
    train_dirs = [resolve_data(d) for d in config.train_data]
    val_dir = resolve_data(config.val_data)
    generator = trackables["generator"]
    init_source = first_weights(run_dir, generator, init, progress)
    if getattr(config, "init_discriminator", "") and "discriminator" in trackables and not has_checkpoints(run_dir):
        source = init_discriminator(trackables["discriminator"], config.init_discriminator)
        if progress:
            print(f"discriminator initialised from {source}")

    def make_dataset(start_step, ctx):
        return train_dataset(
            train_dirs, config.scale, hr_patch=config.hr_patch, batch_size=batch_size,
            degradation=config.degradation, degradation_options=getattr(config, "degradation_options", ()),
            sharpen_hr=getattr(config, "sharpen_hr", 0.0),
            seed=config.seed, start_step=start_step, input_context=ctx)

    step, shown = model.train_step, generator
    if guarded and getattr(config, "ema_decay", 0.0):
        from common.ema import AveragedStep, WeightAverage

        with strategy.scope():
            step = AveragedStep(model.train_step, trackables, WeightAverage(generator, config.ema_decay))
        trackables, shown = step.trackables, step.average.average

    trainer = Trainer(
        run_dir, step, make_dataset, trackables=trackables, total_steps=config.steps,
        strategy=strategy, checkpoint_every=config.checkpoint_every, log_every=config.log_every,
        validate_every=config.validate_every,
        validate=generator_validation(shown, meta, val_dir, config, name, perceptual=guarded),
        config={**run_config, "init": init_source}, progress=progress,
        # the quality guard needs validations (none: a quick run, e.g. in a notebook)
        guard=collapse_guard(config.max_psnr_drop, config.max_colour_shift) if guarded and config.validate_every else None,
        loss_guard=saturation_guard(config.d_saturation) if guarded else None,
        # a GAN stage trades PSNR for natural texture: its best step is the lowest NIQE, but NIQE
        # also rewards amplified noise and colour lattices, hence the false-colour bound
        best_metric="niqe" if guarded else None, best_mode="min" if guarded else "max",
        best_within=("false_colour", config.max_false_colour) if guarded else None,
    )
    if shown is not generator:
        step.start_average(tf.train.latest_checkpoint(str(run_dir / "checkpoints")))
    # the generator a session shows and exports: the weight average when there is one
    return Session(config, trainer, model, shown, trackables["g_optimizer"], trackables.get("discriminator"),
                   trackables.get("d_optimizer"), init_source)


def fit_and_export(session: Session, run_dir, export, meta_fn: Callable, best: bool, display: str,
                   progress: bool = True) -> dict:
    """Run the session's Trainer; with `export`, the chief writes the generator: the best validated
    step when `best` (highest PSNR, or a GAN stage's lowest NIQE within its false-colour bound), else
    the last one. `meta_fn(step, psnr)` gives the checkpoint's JSON, to which the step's validation
    NIQE and false colour are added as "val_niqe" and "val_false_colour" when they were measured, and
    "checkpoint_choice" when no validated step was within the bound. Returns the Trainer's result +
    "exported"."""
    trainer, generator, run_dir = session.trainer, session.generator, Path(run_dir)
    result = trainer.fit()
    result["exported"] = None
    if export and not result["stopped"] and trainer.chief:
        from common.checkpoints import save_model

        step, record = result["step"], None
        if best and trainer.restore_best():
            step, record = trainer.best["step"], trainer.best
        else:
            last = [v for v in read_jsonl(run_dir / "validation.jsonl") if v["step"] == step]
            record = last[-1] if last else None
        psnr = None if record is None else record["psnr"]
        meta = meta_fn(step, psnr)
        if record is not None and record.get("niqe") is not None:
            meta["val_niqe"] = float(record["niqe"])
        if record is not None and record.get("false_colour") is not None:
            meta["val_false_colour"] = float(record["false_colour"])
        fallback = None
        if best and trainer.best_within and record is not None:
            name, bound = trainer.best_within
            if record.get(name, float("inf")) > bound:
                fallback = (f"no validated step had {session.config.val_data} false colour within {bound:g}: "
                            f"kept the lowest false colour, not the lowest NIQE")
                meta["checkpoint_choice"] = fallback
        path = save_model(generator, export, meta)
        export_history(run_dir, path)
        result["exported"] = str(path)
        if progress or fallback:
            shown = "n/a" if psnr is None else f"{psnr:.3f} dB"
            extra = "".join(f", {label} {record[key]:.2f}" for key, label in
                            (("niqe", "NIQE"), ("false_colour", "false colour"))
                            if record is not None and record.get(key) is not None)
            print(f"exported {path} ({display}, step {step}, {session.config.val_data} PSNR {shown}{extra})"
                  + (f"; {fallback}" if fallback else ""))
    return result


# --- command line -------------------------------------------------------------------------------


def generator_parser(prog: str, description: str, presets: dict, config_cls, shown_preset: str, *, preset_help: str,
                     stage_name: str, gan_stage_init: str) -> argparse.ArgumentParser:
    """A GAN chapter's training command line: --preset, the common flags and one flag per config field
    (their help shows `shown_preset`'s values)."""
    parser = CommandParser(prog=prog, description=description)
    parser.add_argument("--preset", choices=sorted(presets), help=preset_help)
    add_common_arguments(parser, stage_name, gan_stage_init)
    add_config_arguments(parser, config_cls, shown=presets[shown_preset], shown_name=shown_preset)
    return parser


def add_common_arguments(parser, stage_name: str, gan_stage_init: str):
    """--run-dir, --init, --export, --strategy, --vgg-weights and --quiet."""
    parser.add_argument("--run-dir", help="the run's folder: checkpoints, logs, validation; a run there resumes "
                        "(default: runs/ and the preset's and stage's names)")
    parser.add_argument("--init", help=f"gan stage: {stage_name} weights to start from: an exported "
                        f"checkpoint or a run folder (its best checkpoint; default {gan_stage_init}); "
                        "'none' for random weights")
    parser.add_argument("--export", help="write the generator here (.h5 + .weights.h5 + .json): "
                        "the best Set5 step (generator-only stage) or the last step (gan)")
    add_strategy_argument(parser)
    parser.add_argument("--vgg-weights", default="imagenet",
                        help="VGG19 weights of the perceptual losses: 'imagenet' (Keras' cache), a file "
                        "(vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5), or 'random' (smoke tests only) "
                        "(default: imagenet)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_strategy_argument(parser):
    parser.add_argument("--strategy", default="default", choices=["default", "mirrored", "multiworker"],
                        help="tf.distribute strategy: 'default' (one device), 'mirrored' (every local GPU, "
                        "else the logical CPUs) or 'multiworker' (the workers of TF_CONFIG) (default: default)")


def resolve_init(init, default_run: Path, run_dir: Path, missing_message: str, gan: bool):
    """The --init to use: the default run folder for a new gan-stage run; None for 'none'.
    Raises InitError(missing_message) when a gan stage has nothing to start from."""
    if gan and init is None:
        init = str(default_run)
        if run_checkpoint(default_run) is None and not has_checkpoints(run_dir):
            raise InitError(missing_message)
    if init is not None and init.lower() == "none":
        return None
    return init


def training_meta(config, steps: int, val_psnr) -> dict:
    """The checkpoint JSON fields every generator stage records about its training."""
    return {"degradation": config.degradation, "training_data": "+".join(str(d) for d in config.train_data),
            "steps": int(steps), "val_psnr": None if val_psnr is None else float(val_psnr),
            "val_data": config.val_data, "stage": config.stage,
            **({"init_discriminator": config.init_discriminator} if getattr(config, "init_discriminator", "") else {}),
            **({"degradation_options": list(config.degradation_options)}
               if getattr(config, "degradation_options", ()) else {}),
            **({"sharpen_hr": config.sharpen_hr} if getattr(config, "sharpen_hr", 0.0) else {})}


def stage_train(build: Callable, checkpoint_meta: Callable, display_name: Callable) -> Callable:
    """A GAN chapter's `train(config, run_dir, strategy_name, init, export, vgg_weights, progress)`:
    build its session, run (or resume) one stage, export the best step with the chapter's metadata."""

    def train(config, run_dir, strategy_name: str = "default", init=None, export=None, vgg_weights="imagenet",
              progress: bool = True) -> dict:
        """Run (or resume) one stage; returns the Trainer's result plus "exported" (a path or None)."""
        session = build(config, run_dir, strategy_name, init, vgg_weights, progress)
        return fit_and_export(session, run_dir, export,
                              lambda step, psnr: checkpoint_meta(config, step, psnr, session.init, vgg_weights),
                              best=True, display=display_name(config), progress=progress)

    return train


def check_data_settings(config, fields=("train_data", "val_data")) -> None:
    """SettingError (naming the flag and the folder) for a data folder of `config` that does not
    exist, or degradation options its degradation does not take; called before anything is built."""
    for name in fields:
        values = getattr(config, name, None)
        if values is None:
            continue
        if isinstance(values, tuple) and not values:
            raise SettingError(name, "give at least one folder")
        for value in values if isinstance(values, tuple) else (values,):
            check_data_folder(name, value, DATA)
    if hasattr(config, "degradation"):
        from common.degradations import make_degradation

        try:
            make_degradation(config.degradation, getattr(config, "degradation_options", ()))
        except (ValueError, TypeError) as exc:
            raise SettingError("degradation_options" if getattr(config, "degradation_options", ()) else "degradation",
                               str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


def check_run_paths(args, config, run_dir: Path) -> None:
    """SettingError for a --run-dir that is a file, an --init or --init-discriminator that does
    not exist, or an --export that is a folder: before anything is built."""
    if run_dir.exists() and not run_dir.is_dir():
        raise SettingError("--run-dir", f"{run_dir} is a file, not a folder")
    init = getattr(args, "init", None)
    if init and init.lower() != "none":
        check_checkpoint("--init", init, run_folders=True)
    if getattr(config, "stage", None) == "gan" and getattr(config, "init_discriminator", ""):
        if not Path(config.init_discriminator).exists():
            raise SettingError("init_discriminator", f"{config.init_discriminator}: not found (not a run folder "
                               "or a .weights.h5 file)")
    export = getattr(args, "export", None)
    if export and Path(export).is_dir():
        raise SettingError("--export", f"{export} is a folder: give a file name (X.h5)")


def stage_main(args, resolve_config: Callable, run_dir_for: Callable, init_run_for: Callable,
               missing_message: Callable, train_fn: Callable) -> int:
    """A GAN chapter's `train` command after parsing: `resolve_config(args)` -> (preset, config);
    the run folder (--run-dir or `run_dir_for(preset, config)`); the first weights of a gan stage
    (--init, or the run `init_run_for(preset, config)`, else InitError(`missing_message(that run)`));
    then run_cli. Every setting is checked before anything is built: the config's own checks (types,
    bounds, combinations), its data folders and degradation options, and the paths given; bad
    settings exit 2 with one line, "error: --flag: reason"."""
    try:
        name, config = resolve_config(args)
        check_data_settings(config)
        run_dir = Path(args.run_dir) if args.run_dir else run_dir_for(name, config)
        check_run_paths(args, config, run_dir)
        default_init = init_run_for(name, config)
        init = resolve_init(args.init, default_init, run_dir, gan=config.stage == "gan",
                            missing_message=missing_message(default_init))
    except ValueError as exc:  # a config check, or InitError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run_cli(train_fn, args, config, run_dir, init)


def run_cli(train_fn: Callable, args, config, run_dir: Path, init) -> int:
    """Run train_fn with the CLI's choices; one-line errors; 130 when interrupted."""
    vgg_weights = None if args.vgg_weights == "random" else args.vgg_weights
    try:
        result = train_fn(config, run_dir, args.strategy, init, args.export, vgg_weights, progress=not args.quiet)
    # CheckpointError: e.g. --perceptual pretrained-disc when its published weights are not installed
    # SettingError: a setting only a builder could judge
    except (VGGWeightsUnavailable, InitError, CheckpointError, FileNotFoundError, SettingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (TrainingDiverged, TrainingCollapsed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 130 if result["stopped"] else 0
