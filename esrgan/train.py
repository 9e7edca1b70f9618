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
import sys
from dataclasses import asdict
from pathlib import Path

import keras

import common  # noqa: F401  (quiet TensorFlow import)
from common.chapter import (InitError, Session, add_common_arguments, add_config_arguments, config_overrides,
                            fit_and_export, generator_session, init_generator, resolve_init,  # noqa: F401
                            run_cli)  # init_generator: re-exported for the chapter's users
from common.training import make_strategy
from common.vgg import vgg_features
from esrgan.config import PRESETS, STAGES, ESRGANConfig, config_fields, default_preset, with_overrides
from esrgan.gan import ESRGAN, PSNRTrainer
from esrgan.losses import (GeneratorLoss, L1Loss, PerceptualLoss, RelativisticDiscriminatorLoss,
                           RelativisticGeneratorLoss)
from esrgan.models import discriminator, rrdb_generator

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


def build(config: ESRGANConfig, run_dir, strategy_name: str = "default", init=None,
          vgg_weights="imagenet", progress: bool = True) -> Session:
    """Networks, optimizers, losses, data and a Trainer resumed from `run_dir` if it holds a run."""
    run_dir = Path(run_dir)
    keras.utils.set_random_seed(config.seed)  # initial weights, not only the data
    strategy = make_strategy(strategy_name)

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

    run_config = {**asdict(config), "strategy": strategy_name, "vgg_weights": str(vgg_weights)}
    return generator_session(config, run_dir, strategy, model, trackables, init, name=f"esrgan-{config.stage}",
                             meta=checkpoint_meta(config, 0, None), batch_size=config.batch_size,
                             run_config=run_config, progress=progress)


def train(config: ESRGANConfig, run_dir, strategy_name: str = "default", init=None, export=None,
          vgg_weights="imagenet", progress: bool = True) -> dict:
    """Run (or resume) one stage; returns the Trainer's result plus "exported" (a path or None)."""
    session = build(config, run_dir, strategy_name, init, vgg_weights, progress)
    return fit_and_export(session, run_dir, export, lambda step, psnr: checkpoint_meta(config, step, psnr, session.init),
                          best=config.stage == "psnr", display=display_name(config), progress=progress)


# --- command line -------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m esrgan.train", description=__doc__.split("\n")[0])
    parser.add_argument("--stage", choices=STAGES, help="default: the preset's stage (psnr)")
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="a configuration (default: the paper's, psnr or gan after --stage); "
                        "--stage changes only the stage, not the preset's learning rates")
    add_common_arguments(parser, "PSNR-stage", "the psnr run of the preset")
    add_config_arguments(parser, ESRGANConfig, skip={"stage"})
    return parser.parse_args(argv)


def resolve_config(args) -> tuple[str, ESRGANConfig]:
    name = args.preset or default_preset(args.stage or "psnr")
    overrides = config_overrides(args, config_fields())
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
    default_init = default_run_dir(name, "psnr")
    try:
        init = resolve_init(args.init, default_init, run_dir, gan=config.stage == "gan", missing_message=(
            "the gan stage starts from PSNR-trained weights: train them first (--stage psnr) or pass "
            f"--init CHECKPOINT|RUN_DIR (none found in {default_init}; '--init none' for random weights)"))
    except InitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run_cli(train, args, config, run_dir, init)


if __name__ == "__main__":
    sys.exit(main())
