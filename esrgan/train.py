"""Train ESRGAN x4: python -m esrgan.train --stage psnr|gan [--preset psnr|gan|cpu|tiny]

    python -m esrgan.train --stage psnr --export esrgan/weights/rrdb_psnr_x4.h5
    python -m esrgan.train --stage gan --init runs/esrgan-psnr --export esrgan/weights/rrdb_x4.h5
    python -m esrgan.train --preset cpu --export rrdb_cpu_x4.h5        # small, trains on a CPU
    python -m esrgan.train --preset compact-cpu --export compact_x4.h5  # --arch srvgg-compact: fast to run

Stage "psnr" trains the generator (--arch: ESRGAN's RRDBNet, SRGAN's SRResNet or Real-ESRGAN's
SRVGGNetCompact, recorded in the checkpoint's JSON) alone with L1 (RRDB_PSNR); stage "gan" trains it against
the relativistic discriminator from PSNR weights (--init: an exported checkpoint or a psnr run
folder, whose best checkpoint is used; default the psnr run of the same preset). Runs resume from
--run-dir (default runs/esrgan-<stage>, or runs/esrgan-<preset>-<stage> for other presets). Set5
PSNR/SSIM and a sample image go to TensorBoard (run-dir/logs) every --validate-every steps.
--export writes the best validated generator (highest Set5 PSNR; gan stage: lowest Set5 NIQE,
which biases Set5) with its JSON metadata; a resumed run uses the configured learning rate. Every field of
esrgan.config.ESRGANConfig is a flag (--num-blocks 4 --num-filters 32 ...).
"""
import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import keras

import common  # noqa: F401  (quiet TensorFlow import)
from common.chapter import (Session, generator_parser, generator_session, init_generator,  # noqa: F401
                            stage_main, stage_train, training_meta)  # init_generator: re-exported for the chapter's users
from common import registry
from common.chapter import InitError, has_checkpoints
from common.training import make_strategy
from common.perceptual import hidden_layers, perceptual_description as describe_perceptual, pretrained_discriminator
from common.vgg import vgg_features
from common.config_cli import config_from_args
from esrgan.chapter import CHAPTER
from esrgan.config import ARCHITECTURES, PRESETS, ESRGANConfig, default_preset
from esrgan.gan import ESRGAN, PSNRTrainer
from esrgan.losses import (GeneratorLoss, L1Loss, PerceptualLoss, RelativisticDiscriminatorLoss,
                           RelativisticGeneratorLoss, normalised_feature_loss, pixel_loss)
from esrgan.models import discriminator

PERCEPTUAL_LAYER = "conv5_4"  # VGG19, before its ReLU
PRETRAINED_DISCRIMINATOR = "krasserm:discriminator"  # the 'pretrained-disc' network: the published SRGAN one


def display_name(config: ESRGANConfig) -> str:
    if config.arch != "rrdb":
        return {"srresnet": "SRResNet-", "srvgg-compact": "SRVGGNetCompact-"}[config.arch] + config.stage.upper()
    return "RRDB-PSNR" if config.stage == "psnr" else "ESRGAN"


def learning_rate(config: ESRGANConfig, hold: int = 0):
    """config.lr, multiplied by lr_decay_factor after each milestone (counted in updates); 0 for the
    first `hold` updates (the generator during --d-warmup)."""
    if not config.lr_milestones and not hold:
        return config.lr
    # the schedule sees the optimizer's iterations, counted from 0: updates 1 .. m use the rate before m
    boundaries = [int(m) - 1 for m in config.lr_milestones]
    values = [config.lr * config.lr_decay_factor**i for i in range(len(boundaries) + 1)]
    if hold:
        kept = [(b, v) for b, v in zip(boundaries, values[1:]) if b > hold - 1]
        values = [0.0, values[len(boundaries) - len(kept)]] + [v for _, v in kept]
        boundaries = [hold - 1] + [b for b, _ in kept]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def make_optimizer(config: ESRGANConfig, hold: int = 0) -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate(config, hold), beta_1=config.beta_1, beta_2=config.beta_2)


# Discriminator layers of the substitutes, one per resolution: ESRGAN's own VGG-style discriminator,
# and krasserm's SRGAN discriminator.
DISC_LAYERS = {"disc-features": ("lrelu0_1", "lrelu1_1", "lrelu2_1", "lrelu3_1", "lrelu4_1"),
               "pretrained-disc": ("lrelu1", "lrelu3", "lrelu5", "lrelu7")}


def disc_layers(config: ESRGANConfig) -> tuple:
    """The discriminator layers of a disc-features / pretrained-disc loss (--feature-layers or DISC_LAYERS)."""
    return tuple(config.feature_layers) or DISC_LAYERS.get(config.perceptual, ())


def perceptual_loss(config: ESRGANConfig, vgg_weights="imagenet", discriminator=None):
    """L_percep on the configured feature network (see ESRGANConfig.perceptual)."""
    if config.perceptual == "vgg-imagenet":
        return PerceptualLoss(vgg_features((PERCEPTUAL_LAYER,), before_activation=True, weights=vgg_weights),
                              config.perceptual_weight)
    if config.perceptual == "vgg-random":
        network = vgg_features((PERCEPTUAL_LAYER,), before_activation=True, weights=None, random_init="he_normal")
        return normalised_feature_loss(network, config.perceptual_weight,
                                       description=perceptual_description(config, vgg_weights))
    if config.perceptual == "disc-features":
        network, to_input = hidden_layers(discriminator, disc_layers(config)), None
    else:  # the published SRGAN discriminator (input [-1, 1]) as a fixed feature network
        network = hidden_layers(pretrained_discriminator(PRETRAINED_DISCRIMINATOR), disc_layers(config))
        to_input = lambda x: x * 2.0 - 1.0  # noqa: E731
    return normalised_feature_loss(network, config.perceptual_weight, to_input,
                                   perceptual_description(config, vgg_weights))


def perceptual_description(config: ESRGANConfig, vgg_weights) -> str:
    """Which feature network L_percep used, for the checkpoint's JSON and the README."""
    return describe_perceptual(config.perceptual, "L1", vgg_layer=PERCEPTUAL_LAYER, before_activation=True,
                               disc_layers=disc_layers(config), vgg_weights=vgg_weights,
                               seed=config.seed)


def make_losses(config: ESRGANConfig, vgg_weights="imagenet", discriminator=None):
    """(GeneratorLoss, RelativisticDiscriminatorLoss) of the GAN stage."""
    g_loss = GeneratorLoss(perceptual_loss(config, vgg_weights, discriminator),
                           RelativisticGeneratorLoss(config.gan_weight),
                           pixel_loss(config.scale, config.l1_weight, config.lowpass_weight))
    return g_loss, RelativisticDiscriminatorLoss()


def build_generator(config: ESRGANConfig) -> keras.Model:
    """The --arch generator with the config's arguments (through common.registry, as a checkpoint's
    JSON rebuilds it)."""
    return registry.build(config.architecture, **config.generator_args())


def checkpoint_meta(config: ESRGANConfig, steps: int, val_psnr, init=None, vgg_weights="imagenet") -> dict:
    # another chapter's architecture (srresnet) is declared there; these losses train every generator
    # to give [0, 1] (SRGAN's own SRResNet gives [-1, 1])
    owner = CHAPTER if config.architecture in CHAPTER.architectures else registry.chapter_of(config.architecture)
    meta = {
        **owner.checkpoint_meta(config.architecture, config.generator_args(), config.scale, output_range=[0, 1]),
        **training_meta(config, steps, val_psnr),
        "display_name": display_name(config),
    }
    if config.stage == "gan":
        meta.update(perceptual_weight=config.perceptual_weight, gan_weight=config.gan_weight,
                    l1_weight=config.l1_weight, perceptual=perceptual_description(config, vgg_weights),
                    lowpass_weight=config.lowpass_weight, ema_decay=config.ema_decay, d_warmup=config.d_warmup,
                    r1_weight=config.r1_weight,
                    init=None if init is None else str(init))
    return meta


def build(config: ESRGANConfig, run_dir, strategy_name: str = "default", init=None,
          vgg_weights="imagenet", progress: bool = True) -> Session:
    """Networks, optimizers, losses, data and a Trainer resumed from `run_dir` if it holds a run."""
    run_dir = Path(run_dir)
    check_architecture(config, run_dir, init)
    keras.utils.set_random_seed(config.seed)  # initial weights, not only the data
    strategy = make_strategy(strategy_name)

    with strategy.scope():
        # The VGG loss first: a missing VGG19 weights file stops the run before anything is written.
        on_disc = config.perceptual == "disc-features"
        losses = make_losses(config, vgg_weights) if config.stage == "gan" and not on_disc else None
        generator = build_generator(config)
        g_optimizer = make_optimizer(config, hold=config.d_warmup if config.stage == "gan" else 0)
        trackables = {"generator": generator, "g_optimizer": g_optimizer}
        if config.stage == "psnr":
            model = PSNRTrainer(generator, L1Loss(1.0))
            model.compile(g_optimizer)
        else:
            disc = discriminator(**config.discriminator_args())
            if on_disc:
                losses = make_losses(config, vgg_weights, disc)
            d_optimizer = make_optimizer(config)
            model = ESRGAN(generator, disc, *losses, r1_weight=config.r1_weight)
            model.compile(g_optimizer, d_optimizer)
            trackables.update(discriminator=disc, d_optimizer=d_optimizer)

    run_config = {**asdict(config), "strategy": strategy_name, "vgg_weights": str(vgg_weights)}
    return generator_session(config, run_dir, strategy, model, trackables, init, name=f"esrgan-{config.stage}",
                             meta=checkpoint_meta(config, 0, None, vgg_weights=vgg_weights), batch_size=config.batch_size,
                             run_config=run_config, progress=progress, guarded=config.stage == "gan")


def run_arch(run_dir: Path) -> str | None:
    """The --arch a run folder trained (its config.json; runs from before --arch: rrdb), or None."""
    try:
        return json.loads((Path(run_dir) / "config.json").read_text()).get("arch", "rrdb")
    except (OSError, ValueError, AttributeError):
        return None


def check_architecture(config: ESRGANConfig, run_dir: Path, init) -> None:
    """InitError (one line) when the run to resume, or the --init weights of a new run, hold another
    architecture than --arch, before anything is built or written."""
    if has_checkpoints(run_dir):
        trained = run_arch(run_dir)
        if trained is not None and trained != config.arch:
            raise InitError(f"{run_dir} is a run of --arch {trained}, not {config.arch}: resume it with "
                            f"--arch {trained}, or give this run another --run-dir")
        return
    if not init:
        return
    path = Path(init)
    if path.is_dir():
        trained = run_arch(path) if has_checkpoints(path) else None
    else:
        from common.checkpoints import CheckpointError, read_meta

        try:
            meta = read_meta(path, required=False)
        except CheckpointError:
            return  # init_generator reports an unreadable checkpoint
        architecture = meta.get("architecture")
        if architecture is None:
            return  # a file without our JSON: init_generator compares the weights
        by_name = {v: k for k, v in ARCHITECTURES.items()}
        trained = by_name.get(architecture, architecture)
        output_range = list(meta.get("output_range") or [0, 1])
        if trained == config.arch and output_range != [0, 1]:
            raise InitError(f"--init {init} gives values in {output_range}, this run trains a generator "
                            "to give [0, 1]")
    if trained is not None and trained != config.arch:
        hint = f"--arch {trained}" if trained in ARCHITECTURES else "another --init"
        raise InitError(f"--init {init} holds a {trained} generator, but this run trains --arch {config.arch} "
                        f"(weights cannot move between architectures: use {hint}, or '--init none')")


train = stage_train(build, checkpoint_meta, display_name)


# --- command line -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    return generator_parser(
        f"python -m {CHAPTER.name}.train", __doc__.split("\n")[0], CHAPTER.presets, CHAPTER.config, "psnr",
        preset_help="a configuration (default: the paper's, psnr or gan after --stage); "
        "--stage changes only the stage, not the preset's learning rates",
        stage_name="PSNR-stage", gan_stage_init="the psnr run of the preset")


def parse_args(argv=None):
    return build_parser().parse_args(argv)


def resolve_config(args) -> tuple[str, ESRGANConfig]:
    name = args.preset or default_preset(getattr(args, "stage", "psnr"))
    return name, config_from_args(args, ESRGANConfig, PRESETS[name])


def default_run_dir(preset: str, config: ESRGANConfig, stage: str | None = None) -> Path:
    """runs/<the chapter's run name> of `config`, or of its `stage` (e.g. a gan run's psnr run)."""
    return CHAPTER.run_dir(preset, config if stage is None else replace(config, stage=stage))


def main(argv=None) -> int:
    return stage_main(parse_args(argv), resolve_config, default_run_dir,
                      lambda name, config: default_run_dir(name, config, "psnr"), lambda default_init: (
                          "the gan stage starts from PSNR-trained weights: train them first (--stage psnr) or pass "
                          f"--init CHECKPOINT|RUN_DIR (none found in {default_init}; '--init none' for random weights)"),
                      train)


if __name__ == "__main__":
    sys.exit(main())
