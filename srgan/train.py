"""Train SRResNet / SRGAN x4: python -m srgan.train --stage pretrain|gan --content-loss mse|vgg22|vgg54

    python -m srgan.train --stage pretrain --content-loss mse --export srgan/weights/srresnet_x4.h5
    python -m srgan.train --stage gan --content-loss vgg54 --init runs/srresnet-mse --export srgan_x4.h5

Stage "pretrain" trains the generator alone (SRResNet-MSE, SRResNet-VGG22); stage "gan" trains it
against the discriminator from a pretrained SRResNet (--init: an exported checkpoint or a pretrain
run folder, whose best checkpoint is used; default runs/srresnet-mse). Runs resume from --run-dir
(default runs/<variant>, e.g. runs/srgan-vgg54). Set5 PSNR/SSIM and a sample image go to TensorBoard
(run-dir/logs) every --validate-every steps. --export writes the best (pretrain) or last (gan)
generator with its JSON metadata.
"""
import argparse
import sys
from dataclasses import asdict, replace
from pathlib import Path

import keras

import common  # noqa: F401  (quiet TensorFlow import)
from common.chapter import (InitError, Session, add_common_arguments, add_config_arguments, config_overrides,
                            fit_and_export, generator_session, init_generator, resolve_init,  # noqa: F401
                            run_cli)  # init_generator: re-exported for the chapter's users
from common.training import make_strategy
from srgan.config import CONTENT_LOSSES, PRESETS, STAGES, SRGANConfig, config_fields, preset_for, with_overrides
from srgan.gan import SRGAN, SRResNetTrainer
from srgan.losses import AdversarialLoss, DiscriminatorLoss, TotalVariation, content_loss
from srgan.models import discriminator, srresnet


def variant_name(config: SRGANConfig) -> str:
    """srresnet-mse, srresnet-vgg22, srgan-mse, srgan-vgg22, srgan-vgg54, ..."""
    return f"{'srresnet' if config.stage == 'pretrain' else 'srgan'}-{config.content_loss}"


def display_name(config: SRGANConfig) -> str:
    return f"{'SRResNet' if config.stage == 'pretrain' else 'SRGAN'}-{config.content_loss.upper()}"


def learning_rate(config: SRGANConfig, updates_per_step: int = 1):
    """config.lr, or a PiecewiseConstantDecay to lr * lr_decay_factor after lr_boundary steps."""
    if config.lr_boundary is None:
        return config.lr
    # the schedule sees the optimizer's iterations, counted from 0: updates 1 .. boundary use lr
    boundary = config.lr_boundary * updates_per_step - 1
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [boundary], [config.lr, config.lr * config.lr_decay_factor])


def make_optimizer(config: SRGANConfig, updates_per_step: int = 1) -> keras.optimizers.Optimizer:
    """Adam(beta_1 = 0.9) with the stage's learning rate (schedule)."""
    return keras.optimizers.Adam(learning_rate(config, updates_per_step), beta_1=config.beta_1,
                                 beta_2=config.beta_2)


def checkpoint_meta(config: SRGANConfig, steps: int, val_psnr, init=None) -> dict:
    meta = {
        "architecture": "srresnet",
        "args": config.generator_args(),
        "scale": config.scale,
        "upsampling": "post",
        "color": "rgb",
        "input_range": [0, 1],
        "output_range": [-1, 1],
        "degradation": config.degradation,
        "training_data": "+".join(str(d) for d in config.train_data),
        "steps": int(steps),
        "val_psnr": None if val_psnr is None else float(val_psnr),
        "val_data": config.val_data,
        "stage": config.stage,
        "content_loss": config.content_loss,
        "display_name": display_name(config),
    }
    if config.stage == "gan":
        meta.update(adversarial_weight=config.adversarial_weight, tv_weight=config.tv_weight,
                    init=None if init is None else str(init))
    return meta


def build(config: SRGANConfig, run_dir, strategy_name: str = "default", init=None,
          vgg_weights="imagenet", progress: bool = True) -> Session:
    """Networks, optimizers, losses, data and a Trainer resumed from `run_dir` if it holds a run."""
    run_dir = Path(run_dir)
    keras.utils.set_random_seed(config.seed)  # initial weights, not only the data
    strategy = make_strategy(strategy_name)
    k = config.d_steps if config.stage == "gan" else 1

    with strategy.scope():
        # The VGG loss first: a missing VGG19 weights file stops the run before anything is written.
        content = content_loss(config.content_loss, vgg_weights=vgg_weights)
        generator = srresnet(**config.generator_args())
        g_optimizer = make_optimizer(config)
        trackables = {"generator": generator, "g_optimizer": g_optimizer}
        if config.stage == "pretrain":
            model = SRResNetTrainer(generator, content)
            model.compile(g_optimizer)
        else:
            disc = discriminator(**config.discriminator_args())
            d_optimizer = make_optimizer(config, updates_per_step=k)
            model = SRGAN(generator, disc, content, AdversarialLoss(config.adversarial_weight),
                          DiscriminatorLoss(), TotalVariation(config.tv_weight) if config.tv_weight else None,
                          d_steps=k)
            model.compile(g_optimizer, d_optimizer)
            trackables.update(discriminator=disc, d_optimizer=d_optimizer)

    run_config = {**asdict(config), "variant": variant_name(config), "strategy": strategy_name,
                  "vgg_weights": str(vgg_weights)}
    return generator_session(config, run_dir, strategy, model, trackables, init, name=variant_name(config),
                             meta=checkpoint_meta(config, 0, None), batch_size=config.batch_size * k,
                             run_config=run_config, progress=progress)


def train(config: SRGANConfig, run_dir, strategy_name: str = "default", init=None, export=None,
          vgg_weights="imagenet", progress: bool = True) -> dict:
    """Run (or resume) one stage; returns the Trainer's result plus "exported" (a path or None)."""
    session = build(config, run_dir, strategy_name, init, vgg_weights, progress)
    return fit_and_export(session, run_dir, export, lambda step, psnr: checkpoint_meta(config, step, psnr, session.init),
                          best=config.stage == "pretrain", display=display_name(config), progress=progress)


def _optional_float(text: str):
    return None if text.lower() in ("none", "off") else float(text)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m srgan.train", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="a configuration (default: the paper's variant for --stage and --content-loss)")
    parser.add_argument("--stage", choices=STAGES)
    parser.add_argument("--content-loss", choices=CONTENT_LOSSES)
    add_common_arguments(parser, "SRResNet", "runs/srresnet-mse")
    add_config_arguments(parser, SRGANConfig, skip={"stage", "content_loss"}, special={"lr_decay_at": dict(
        type=_optional_float, default=argparse.SUPPRESS,
        help="fraction of the steps after which the learning rate drops ('none': never)")})
    return parser.parse_args(argv)


def resolve_config(args) -> tuple[str, SRGANConfig]:
    name = args.preset or preset_for(args.stage or "pretrain", args.content_loss or "mse")
    overrides = config_overrides(args, config_fields())
    config = with_overrides(PRESETS[name], **overrides)
    if hasattr(args, "lr_decay_at"):  # an explicit 'none' must override the preset too
        config = replace(config, lr_decay_at=args.lr_decay_at)
    return name, config


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        name, config = resolve_config(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    variant = variant_name(config)
    run_dir = Path(args.run_dir or f"runs/{variant if name == variant else name + '-' + variant}")
    try:
        init = resolve_init(args.init, Path("runs/srresnet-mse"), run_dir, gan=config.stage == "gan", missing_message=(
            "the gan stage starts from a pretrained SRResNet: train one first (--stage pretrain "
            "--content-loss mse) or pass --init CHECKPOINT|RUN_DIR ('--init none' for random weights)"))
    except InitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run_cli(train, args, config, run_dir, init)


if __name__ == "__main__":
    sys.exit(main())
