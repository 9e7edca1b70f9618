"""Train ESRGAN x4: python -m esrgan.train --stage psnr|gan [--preset psnr|gan|cpu|tiny]

    python -m esrgan.train --stage psnr --export esrgan/weights/rrdb_psnr_x4.h5
    python -m esrgan.train --stage gan --init runs/esrgan-psnr --export esrgan/weights/rrdb_x4.h5
    python -m esrgan.train --preset cpu --export rrdb_cpu_x4.h5        # small, trains on a CPU

Stage "psnr" trains the RRDB generator alone with L1 (RRDB_PSNR); stage "gan" trains it against
the relativistic discriminator from PSNR weights (--init: an exported checkpoint or a psnr run
folder, whose best checkpoint is used; default the psnr run of the same preset). Runs resume from
--run-dir (default runs/esrgan-<stage>, or runs/esrgan-<preset>-<stage> for other presets). Set5
PSNR/SSIM and a sample image go to TensorBoard (run-dir/logs) every --validate-every steps.
--export writes the best (psnr) or last (gan) generator with its JSON metadata. Every field of
esrgan.config.ESRGANConfig is a flag (--num-blocks 4 --num-filters 32 ...).
"""
import argparse
import json
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import keras
import tensorflow as tf

import common  # noqa: F401  (quiet TensorFlow import)
from common.data import train_dataset
from common.evaluate import evaluate_model
from common.paths import resolve_data
from common.training import Trainer, TrainingDiverged, make_strategy
from common.vgg import VGGWeightsUnavailable, vgg_features
from esrgan.config import PRESETS, STAGES, ESRGANConfig, config_fields, default_preset, with_overrides
from esrgan.gan import ESRGAN, PSNRTrainer
from esrgan.losses import (GeneratorLoss, L1Loss, PerceptualLoss, RelativisticDiscriminatorLoss,
                           RelativisticGeneratorLoss)
from esrgan.models import discriminator, rrdb_generator
# Generic helpers of the SRGAN chapter (candidates for common/).
from srgan.train import InitError, _bool, _read_jsonl, _run_checkpoint, init_generator

PERCEPTUAL_LAYER = "conv5_4"  # VGG19, before its ReLU


def display_name(config: ESRGANConfig) -> str:
    return "RRDB-PSNR" if config.stage == "psnr" else "ESRGAN"


def learning_rate(config: ESRGANConfig):
    """config.lr, multiplied by lr_decay_factor after each milestone (counted in updates)."""
    if not config.lr_milestones:
        return config.lr
    # the schedule sees the optimizer's iterations, counted from 0: updates 1 .. m use the rate before m
    boundaries = [int(m) - 1 for m in config.lr_milestones]
    values = [config.lr * config.lr_decay_factor**i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def make_optimizer(config: ESRGANConfig) -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate(config), beta_1=config.beta_1, beta_2=config.beta_2)


def make_losses(config: ESRGANConfig, vgg_weights="imagenet"):
    """(GeneratorLoss, RelativisticDiscriminatorLoss) of the GAN stage; VGG19 conv5_4 before ReLU."""
    features = vgg_features((PERCEPTUAL_LAYER,), before_activation=True, weights=vgg_weights)
    g_loss = GeneratorLoss(PerceptualLoss(features, config.perceptual_weight),
                           RelativisticGeneratorLoss(config.gan_weight), L1Loss(config.l1_weight))
    return g_loss, RelativisticDiscriminatorLoss()


def checkpoint_meta(config: ESRGANConfig, steps: int, val_psnr, init=None) -> dict:
    meta = {
        "architecture": "rrdb_generator",
        "args": config.generator_args(),
        "scale": config.scale,
        "upsampling": "post",
        "color": "rgb",
        "input_range": [0, 1],
        "output_range": [0, 1],
        "degradation": config.degradation,
        "training_data": "+".join(str(d) for d in config.train_data),
        "steps": int(steps),
        "val_psnr": None if val_psnr is None else float(val_psnr),
        "val_data": config.val_data,
        "stage": config.stage,
        "display_name": display_name(config),
    }
    if config.stage == "gan":
        meta.update(perceptual_weight=config.perceptual_weight, gan_weight=config.gan_weight,
                    l1_weight=config.l1_weight, perceptual_layer=f"vgg19 {PERCEPTUAL_LAYER} before ReLU",
                    init=None if init is None else str(init))
    return meta


@dataclass
class Session:
    """Everything one training run is made of (see `build`)."""

    config: ESRGANConfig
    trainer: Trainer
    model: keras.Model  # PSNRTrainer or ESRGAN
    generator: keras.Model
    g_optimizer: keras.optimizers.Optimizer
    discriminator: keras.Model | None = None
    d_optimizer: keras.optimizers.Optimizer | None = None
    init: str | None = None  # where the generator's first weights came from


def build(config: ESRGANConfig, run_dir, strategy_name: str = "default", init=None,
          vgg_weights="imagenet", progress: bool = True) -> Session:
    """Networks, optimizers, losses, data and a Trainer resumed from `run_dir` if it holds a run."""
    run_dir = Path(run_dir)
    keras.utils.set_random_seed(config.seed)  # initial weights, not only the data
    strategy = make_strategy(strategy_name)
    train_dirs = [resolve_data(d) for d in config.train_data]
    val_dir = resolve_data(config.val_data)

    disc = d_optimizer = None
    with strategy.scope():
        # The VGG loss first: a missing VGG19 weights file stops the run before anything is written.
        losses = make_losses(config, vgg_weights) if config.stage == "gan" else None
        generator = rrdb_generator(**config.generator_args())
        g_optimizer = make_optimizer(config)
        trackables = {"generator": generator, "g_optimizer": g_optimizer}
        if config.stage == "psnr":
            model = PSNRTrainer(generator, L1Loss(1.0))
            model.compile(g_optimizer)
        else:
            disc = discriminator(**config.discriminator_args())
            d_optimizer = make_optimizer(config)
            model = ESRGAN(generator, disc, *losses)
            model.compile(g_optimizer, d_optimizer)
            trackables.update(discriminator=disc, d_optimizer=d_optimizer)

    resuming = tf.train.latest_checkpoint(str(run_dir / "checkpoints")) is not None
    init_source = None
    if resuming:  # the run's own checkpoint wins; keep its record of the first weights
        previous = run_dir / "config.json"
        if previous.exists():
            init_source = json.loads(previous.read_text()).get("init")
    elif init:
        init_source = init_generator(generator, init)
        if progress:
            print(f"generator initialised from {init_source}")

    def make_dataset(start_step, ctx):
        return train_dataset(
            train_dirs, config.scale, hr_patch=config.hr_patch, batch_size=config.batch_size,
            degradation=config.degradation, seed=config.seed, start_step=start_step, input_context=ctx)

    def validate(step):
        """Set5 PSNR/SSIM of the generator and the sample images."""
        from common.inference import upscale

        meta = checkpoint_meta(config, step, None)
        outputs = []

        def upscale_fn(lr):
            outputs.append(upscale(lr, generator, meta))
            return outputs[-1]

        result = evaluate_model(upscale_fn, val_dir, config.scale, config.degradation,
                                name=f"esrgan-{config.stage}")
        names = [r["name"] for r in result["per_image"]]
        chosen = [i for i, n in enumerate(names) if n in config.val_samples] or [0]
        return {"psnr": result["psnr"], "ssim": result["ssim"]}, {names[i]: outputs[i] for i in chosen}

    run_config = {**asdict(config), "strategy": strategy_name, "init": init_source, "vgg_weights": str(vgg_weights)}
    trainer = Trainer(
        run_dir, model.train_step, make_dataset, trackables=trackables, total_steps=config.steps,
        strategy=strategy, checkpoint_every=config.checkpoint_every, log_every=config.log_every,
        validate_every=config.validate_every, validate=validate, config=run_config, progress=progress,
    )
    return Session(config, trainer, model, generator, g_optimizer, disc, d_optimizer, init_source)


def train(config: ESRGANConfig, run_dir, strategy_name: str = "default", init=None, export=None,
          vgg_weights="imagenet", progress: bool = True) -> dict:
    """Run (or resume) one stage; returns the Trainer's result plus "exported" (a path or None)."""
    session = build(config, run_dir, strategy_name, init, vgg_weights, progress)
    trainer, generator, run_dir = session.trainer, session.generator, Path(run_dir)
    result = trainer.fit()
    result["exported"] = None
    if export and not result["stopped"] and trainer.chief:  # only the chief writes
        from common.checkpoints import save_model

        step, psnr = result["step"], None
        if config.stage == "psnr" and trainer.restore_best():
            step, psnr = trainer.best["step"], trainer.best["psnr"]
        else:  # the GAN's last weights (PSNR does not measure what it optimises)
            last = [v for v in _read_jsonl(run_dir / "validation.jsonl") if v["step"] == step]
            psnr = last[-1]["psnr"] if last else None
        path = save_model(generator, export, checkpoint_meta(config, step, psnr, session.init))
        result["exported"] = str(path)
        if progress:
            shown = "n/a" if psnr is None else f"{psnr:.3f} dB"
            print(f"exported {path} ({display_name(config)}, step {step}, {config.val_data} PSNR {shown})")
    return result


# --- command line -------------------------------------------------------------------------------


def add_config_arguments(parser, config_cls, skip=()):
    """One --flag per dataclass field (None = keep the preset's value); tuples take several values."""
    defaults = config_cls()
    for f in fields(config_cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if isinstance(default, tuple):
            parser.add_argument(flag, nargs="*", type=type(default[0]) if default else str)
        elif isinstance(default, bool):
            parser.add_argument(flag, type=_bool)
        else:
            parser.add_argument(flag, type=type(default))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m esrgan.train", description=__doc__.split("\n")[0])
    parser.add_argument("--stage", choices=STAGES, help="default: the preset's stage (psnr)")
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="a configuration (default: the paper's, psnr or gan after --stage); "
                        "--stage changes only the stage, not the preset's learning rates")
    parser.add_argument("--run-dir")
    parser.add_argument("--init", help="gan stage: PSNR weights to start from: an exported checkpoint or a "
                        "psnr run folder (default: the psnr run of the preset); 'none' for random weights")
    parser.add_argument("--export", help="write the generator here (.h5 + .weights.h5 + .json): "
                        "the best Set5 step (psnr) or the last step (gan)")
    parser.add_argument("--strategy", default="default", choices=["default", "mirrored", "multiworker"])
    parser.add_argument("--vgg-weights", default="imagenet",
                        help="VGG19 weights of the gan stage's perceptual loss: 'imagenet' (Keras' cache), a "
                        "file (vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5), or 'random' (smoke tests only)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_arguments(parser, ESRGANConfig, skip={"stage"})
    return parser.parse_args(argv)


def resolve_config(args) -> tuple[str, ESRGANConfig]:
    name = args.preset or default_preset(args.stage or "psnr")
    overrides = {f.name: getattr(args, f.name, None) for f in config_fields()}
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return name, with_overrides(PRESETS[name], **overrides)


def default_run_dir(preset: str, stage: str) -> Path:
    return Path("runs") / (f"esrgan-{stage}" if preset in ("psnr", "gan") else f"esrgan-{preset}-{stage}")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        name, config = resolve_config(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(name, config.stage)
    init = args.init
    if config.stage == "gan" and init is None:
        init = str(default_run_dir(name, "psnr"))
        if _run_checkpoint(Path(init)) is None and tf.train.latest_checkpoint(str(run_dir / "checkpoints")) is None:
            print(f"error: the gan stage starts from PSNR-trained weights: train them first (--stage psnr) "
                  f"or pass --init CHECKPOINT|RUN_DIR (none found in {init}; '--init none' for random weights)",
                  file=sys.stderr)
            return 2
    if init is not None and init.lower() == "none":
        init = None
    vgg_weights = None if args.vgg_weights == "random" else args.vgg_weights
    try:
        result = train(config, run_dir, args.strategy, init, args.export, vgg_weights, progress=not args.quiet)
    except (VGGWeightsUnavailable, InitError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 130 if result["stopped"] else 0


if __name__ == "__main__":
    sys.exit(main())
