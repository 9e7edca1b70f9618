"""What the SRGAN and ESRGAN trainers share: a generator run's session, its first weights (--init),
its validation, its export and the dataclass-driven command line.

Each chapter's `train.py` keeps only what differs: networks, losses, schedules and its metadata.
"""
import argparse
import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

import keras
import tensorflow as tf

import common  # noqa: F401  (quiet TensorFlow import)
from common.data import train_dataset
from common.evaluate import evaluate_model
from common.paths import resolve_data
from common.training import Trainer, TrainingDiverged, export_history, read_jsonl
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


def generator_validation(generator, meta: dict, val_dir, config, name: str) -> Callable:
    """validate(step) for the Trainer: PSNR/SSIM on `val_dir` in inference mode, plus the outputs
    of `config.val_samples` (or the first image) for TensorBoard."""

    def validate(step):
        from common.inference import upscale

        outputs = []

        def upscale_fn(lr):
            outputs.append(upscale(lr, generator, meta))
            return outputs[-1]

        result = evaluate_model(upscale_fn, val_dir, config.scale, config.degradation, name=name)
        names = [r["name"] for r in result["per_image"]]
        chosen = [i for i, n in enumerate(names) if n in config.val_samples] or [0]
        return {"psnr": result["psnr"], "ssim": result["ssim"]}, {names[i]: outputs[i] for i in chosen}

    return validate


def generator_session(config, run_dir, strategy, model, trackables: dict, init, *, name: str, meta: dict,
                      batch_size: int, run_config: dict, progress: bool = True) -> Session:
    """The end of a chapter's `build`: the generator's first weights, the training data, the
    validation on `config.val_data` and the Trainer (resumed from `run_dir` if it holds a run).
    `trackables` holds "generator" and "g_optimizer" (and "discriminator", "d_optimizer" for a GAN);
    `meta` is the checkpoint metadata validation upscales with; `run_config` goes to config.json."""
    run_dir = Path(run_dir)
    train_dirs = [resolve_data(d) for d in config.train_data]
    val_dir = resolve_data(config.val_data)
    generator = trackables["generator"]
    init_source = first_weights(run_dir, generator, init, progress)

    def make_dataset(start_step, ctx):
        return train_dataset(
            train_dirs, config.scale, hr_patch=config.hr_patch, batch_size=batch_size,
            degradation=config.degradation, seed=config.seed, start_step=start_step, input_context=ctx)

    trainer = Trainer(
        run_dir, model.train_step, make_dataset, trackables=trackables, total_steps=config.steps,
        strategy=strategy, checkpoint_every=config.checkpoint_every, log_every=config.log_every,
        validate_every=config.validate_every, validate=generator_validation(generator, meta, val_dir, config, name),
        config={**run_config, "init": init_source}, progress=progress,
    )
    return Session(config, trainer, model, generator, trackables["g_optimizer"], trackables.get("discriminator"),
                   trackables.get("d_optimizer"), init_source)


def fit_and_export(session: Session, run_dir, export, meta_fn: Callable, best: bool, display: str,
                   progress: bool = True) -> dict:
    """Run the session's Trainer; with `export`, the chief writes the generator: the best validated
    step when `best` (PSNR-oriented stages), else the last one (a GAN's PSNR is not its goal).
    `meta_fn(step, psnr)` gives the checkpoint's JSON. Returns the Trainer's result + "exported"."""
    trainer, generator, run_dir = session.trainer, session.generator, Path(run_dir)
    result = trainer.fit()
    result["exported"] = None
    if export and not result["stopped"] and trainer.chief:
        from common.checkpoints import save_model

        step, psnr = result["step"], None
        if best and trainer.restore_best():
            step, psnr = trainer.best["step"], trainer.best["psnr"]
        else:
            last = [v for v in read_jsonl(run_dir / "validation.jsonl") if v["step"] == step]
            psnr = last[-1]["psnr"] if last else None
        path = save_model(generator, export, meta_fn(step, psnr))
        export_history(run_dir, path)
        result["exported"] = str(path)
        if progress:
            shown = "n/a" if psnr is None else f"{psnr:.3f} dB"
            print(f"exported {path} ({display}, step {step}, {session.config.val_data} PSNR {shown})")
    return result


# --- command line -------------------------------------------------------------------------------


def parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def add_common_arguments(parser, stage_name: str, gan_stage_init: str):
    """--run-dir, --init, --export, --strategy, --vgg-weights and --quiet."""
    parser.add_argument("--run-dir")
    parser.add_argument("--init", help=f"gan stage: {stage_name} weights to start from: an exported "
                        f"checkpoint or a run folder (its best checkpoint; default {gan_stage_init}); "
                        "'none' for random weights")
    parser.add_argument("--export", help="write the generator here (.h5 + .weights.h5 + .json): "
                        "the best Set5 step (generator-only stage) or the last step (gan)")
    parser.add_argument("--strategy", default="default", choices=["default", "mirrored", "multiworker"])
    parser.add_argument("--vgg-weights", default="imagenet",
                        help="VGG19 weights of the perceptual losses: 'imagenet' (Keras' cache), a file "
                        "(vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5), or 'random' (smoke tests only)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_config_arguments(parser, config_cls, skip=(), special=None):
    """One --flag per dataclass field (None = keep the preset's value); tuples take several values.
    `special` maps a field name to add_argument keyword arguments that replace the default ones."""
    defaults = config_cls()
    for f in fields(config_cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if special and f.name in special:
            parser.add_argument(flag, **special[f.name])
        elif isinstance(default, tuple):
            parser.add_argument(flag, nargs="*", type=type(default[0]) if default else str)
        elif isinstance(default, bool):
            parser.add_argument(flag, type=parse_bool)
        elif isinstance(default, dict):
            continue
        else:
            parser.add_argument(flag, type=type(default))


def config_overrides(args, config_fields) -> dict:
    """The flags given on the command line, lists turned into tuples."""
    overrides = {f.name: getattr(args, f.name, None) for f in config_fields}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}


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


def run_cli(train_fn: Callable, args, config, run_dir: Path, init) -> int:
    """Run train_fn with the CLI's choices; one-line errors; 130 when interrupted."""
    vgg_weights = None if args.vgg_weights == "random" else args.vgg_weights
    try:
        result = train_fn(config, run_dir, args.strategy, init, args.export, vgg_weights, progress=not args.quiet)
    except (VGGWeightsUnavailable, InitError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 130 if result["stopped"] else 0
