"""Train SRResNet / SRGAN x4: python -m srgan.train --stage pretrain|gan --content-loss mse|vgg22|vgg54

    python -m srgan.train --stage pretrain --content-loss mse --export srgan/weights/srresnet_x4.h5
    python -m srgan.train --stage gan --content-loss vgg54 --init runs/srresnet-mse --export srgan_x4.h5

Stage "pretrain" trains the generator alone (SRResNet-MSE, SRResNet-VGG22); stage "gan" trains it
against the discriminator from a pretrained SRResNet (--init: an exported checkpoint or a pretrain
run folder, whose best checkpoint is used; default runs/srresnet-mse). Runs resume from --run-dir
(default runs/<variant>, e.g. runs/srgan-vgg54). Set5 PSNR/SSIM and a sample image go to TensorBoard
(run-dir/logs) every --validate-every steps. --export writes the best validated generator (highest Set5 PSNR; gan stage: lowest Set5 NIQE,
which biases Set5) with its JSON metadata; a resumed run uses the configured learning rate.
"""
import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import keras

import common  # noqa: F401  (quiet TensorFlow import)
from common.chapter import (Session, generator_parser, generator_session, init_generator,  # noqa: F401
                            stage_main, stage_train, training_meta)  # init_generator: re-exported for the chapter's users
from common.training import make_strategy
from common.config_cli import SettingError, config_from_args
from common.losses import LowPassLoss, SumOfLosses
from common.perceptual import frozen, perceptual_description as describe_perceptual
from srgan.chapter import CHAPTER
from srgan.config import PRESETS, SRGANConfig, preset_for, variant_name
from srgan.gan import SRGAN, SRResNetTrainer
from srgan.krasserm import KrassermNotInstalled, load_krasserm_discriminator, weights_dir
from srgan.losses import DISC_LAYERS, AdversarialLoss, DiscriminatorLoss, PixelL1, TotalVariation, content_loss
from srgan.models import discriminator, srresnet


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


def perceptual_description(config: SRGANConfig, vgg_weights) -> str:
    """Which feature network the content loss used, for the checkpoint's JSON and the README."""
    return describe_perceptual(config.perceptual, "MSE", vgg_layer={"vgg22": "conv2_2", "vgg54": "conv5_4"}[config.content_loss],
                               before_activation=False, disc_layers=DISC_LAYERS[config.content_loss],
                               vgg_weights=vgg_weights, seed=config.seed, vgg_scaling=" / 12.75^2")


def checkpoint_meta(config: SRGANConfig, steps: int, val_psnr, init=None, vgg_weights="imagenet") -> dict:
    meta = {
        **CHAPTER.checkpoint_meta("srresnet", config.generator_args(), config.scale),
        **training_meta(config, steps, val_psnr),
        "content_loss": config.content_loss,
        "display_name": display_name(config),
    }
    if config.stage == "gan":
        meta.update(adversarial_weight=config.adversarial_weight, tv_weight=config.tv_weight,
                    init=None if init is None else str(init), pixel_weight=config.pixel_weight,
                    lowpass_weight=config.lowpass_weight, ema_decay=config.ema_decay, r1_weight=config.r1_weight)
    if config.content_loss.startswith("vgg"):
        meta.update(perceptual=perceptual_description(config, vgg_weights), content_weight=config.content_weight)
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
        on_disc = config.perceptual in ("disc-features", "pretrained-disc") and config.content_loss.startswith("vgg")
        if not on_disc:
            content = content_loss(config.content_loss, vgg_weights=vgg_weights, weight=config.content_weight,
                                   perceptual=config.perceptual)
        generator = srresnet(**config.generator_args())
        g_optimizer = make_optimizer(config)
        trackables = {"generator": generator, "g_optimizer": g_optimizer}
        if config.stage == "pretrain":
            if on_disc:
                raise ValueError("a discriminator feature loss needs the gan stage")
            model = SRResNetTrainer(generator, content)
            model.compile(g_optimizer)
        else:
            disc = discriminator(**config.discriminator_args())
            if config.disc_init == "krasserm":
                disc.set_weights(load_krasserm_discriminator().get_weights())
            if on_disc:
                source = disc if config.perceptual == "disc-features" else frozen(load_krasserm_discriminator())
                content = content_loss(config.content_loss, weight=config.content_weight,
                                       perceptual=config.perceptual, discriminator=source)
            if config.pixel_weight:
                content = SumOfLosses(content, PixelL1(config.pixel_weight))
            if config.lowpass_weight:  # images in [-1, 1]: half the weight is the weight in [0, 1] units
                content = SumOfLosses(content, LowPassLoss(config.scale, config.lowpass_weight / 2))
            d_optimizer = make_optimizer(config, updates_per_step=k)
            model = SRGAN(generator, disc, content, AdversarialLoss(config.adversarial_weight),
                          DiscriminatorLoss(), TotalVariation(config.tv_weight) if config.tv_weight else None,
                          d_steps=k, r1_weight=config.r1_weight)
            model.compile(g_optimizer, d_optimizer)
            trackables.update(discriminator=disc, d_optimizer=d_optimizer)

    run_config = {**asdict(config), "variant": variant_name(config), "strategy": strategy_name,
                  "vgg_weights": str(vgg_weights)}
    return generator_session(config, run_dir, strategy, model, trackables, init, name=variant_name(config),
                             meta=checkpoint_meta(config, 0, None, vgg_weights=vgg_weights), batch_size=config.batch_size * k,
                             run_config=run_config, progress=progress, guarded=config.stage == "gan")


train = stage_train(build, checkpoint_meta, display_name)


def build_parser() -> argparse.ArgumentParser:
    return generator_parser(
        f"python -m {CHAPTER.name}.train", __doc__.split("\n")[0], CHAPTER.presets, CHAPTER.config, "srresnet-mse",
        preset_help="a configuration (default: the paper's variant for --stage and --content-loss)",
        stage_name="SRResNet", gan_stage_init="runs/srresnet-mse")


def parse_args(argv=None):
    return build_parser().parse_args(argv)


def resolve_config(args) -> tuple[str, SRGANConfig]:
    """The preset (--preset, else the paper's for --stage and --content-loss) with the flags given;
    SettingError for a setting the run cannot use (the config's checks, krasserm's weights)."""
    name = args.preset or preset_for(getattr(args, "stage", "pretrain"), getattr(args, "content_loss", "mse"))
    config = config_from_args(args, SRGANConfig, PRESETS[name])
    uses_krasserm = {"disc_init": config.disc_init == "krasserm" and config.stage == "gan",
                     "perceptual": config.perceptual == "pretrained-disc" and config.content_loss.startswith("vgg")}
    for field, used in uses_krasserm.items():
        if used:
            try:
                weights_dir()
            except KrassermNotInstalled as exc:
                raise SettingError(field, str(exc)) from None
    return name, config


def main(argv=None) -> int:
    return stage_main(parse_args(argv), resolve_config, CHAPTER.run_dir,
                      lambda name, config: CHAPTER.run_dir("srresnet-mse", PRESETS["srresnet-mse"]), lambda default_init: (
                          "the gan stage starts from a pretrained SRResNet: train one first (--stage pretrain "
                          "--content-loss mse) or pass --init CHECKPOINT|RUN_DIR ('--init none' for random weights)"),
                      train)


if __name__ == "__main__":
    sys.exit(main())
