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
import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import keras
import tensorflow as tf

import common  # noqa: F401  (quiet TensorFlow import)
from common.data import train_dataset
from common.evaluate import evaluate_model
from common.paths import resolve_data
from common.training import Trainer, TrainingDiverged, make_strategy
from common.vgg import VGGWeightsUnavailable
from srgan.config import CONTENT_LOSSES, PRESETS, STAGES, SRGANConfig, config_fields, preset_for, with_overrides
from srgan.gan import SRGAN, SRResNetTrainer
from srgan.losses import AdversarialLoss, DiscriminatorLoss, TotalVariation, content_loss
from srgan.models import discriminator, srresnet


class InitError(ValueError):
    """The --init weights cannot be loaded into the generator; the message is one line."""


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


def _run_checkpoint(run_dir: Path) -> str | None:
    """A training run's best checkpoint, else its latest one."""
    return (tf.train.latest_checkpoint(str(run_dir / "best"))
            or tf.train.latest_checkpoint(str(run_dir / "checkpoints")))


def init_generator(generator, init) -> str:
    """Load SRResNet weights into `generator` from an exported checkpoint or a run folder."""
    path = Path(init)
    if path.is_dir():
        ckpt = _run_checkpoint(path)
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
                        "(check --num-filters / --num-blocks / --batch-norm)")
    generator.set_weights(source.get_weights())
    return str(path)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class Session:
    """Everything one training run is made of (see `build`)."""

    config: SRGANConfig
    trainer: Trainer
    model: keras.Model  # SRResNetTrainer or SRGAN
    generator: keras.Model
    g_optimizer: keras.optimizers.Optimizer
    discriminator: keras.Model | None = None
    d_optimizer: keras.optimizers.Optimizer | None = None
    init: str | None = None  # where the generator's first weights came from


def build(config: SRGANConfig, run_dir, strategy_name: str = "default", init=None,
          vgg_weights="imagenet", progress: bool = True) -> Session:
    """Networks, optimizers, losses, data and a Trainer resumed from `run_dir` if it holds a run."""
    run_dir = Path(run_dir)
    keras.utils.set_random_seed(config.seed)  # initial weights, not only the data
    strategy = make_strategy(strategy_name)
    train_dirs = [resolve_data(d) for d in config.train_data]
    val_dir = resolve_data(config.val_data)
    k = config.d_steps if config.stage == "gan" else 1

    disc = d_optimizer = None
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

    resuming = tf.train.latest_checkpoint(str(run_dir / "checkpoints")) is not None
    init_source = None
    if resuming:  # the run's own checkpoint wins; keep its record of the first weights
        previous = run_dir / "config.json"
        init_source = json.loads(previous.read_text()).get("init") if previous.exists() else None
    elif init:
        init_source = init_generator(generator, init)
        if progress:
            print(f"generator initialised from {init_source}")

    def make_dataset(start_step, ctx):
        return train_dataset(
            train_dirs, config.scale, hr_patch=config.hr_patch, batch_size=config.batch_size * k,
            degradation=config.degradation, seed=config.seed, start_step=start_step, input_context=ctx)

    def validate(step):
        """Set5 PSNR/SSIM of the generator in inference mode (BN moving statistics)."""
        from common.inference import upscale

        meta = checkpoint_meta(config, step, None)
        outputs = []

        def upscale_fn(lr):
            outputs.append(upscale(lr, generator, meta))
            return outputs[-1]

        result = evaluate_model(upscale_fn, val_dir, config.scale, config.degradation, name=variant_name(config))
        names = [r["name"] for r in result["per_image"]]
        chosen = [i for i, n in enumerate(names) if n in config.val_samples] or [0]
        return {"psnr": result["psnr"], "ssim": result["ssim"]}, {names[i]: outputs[i] for i in chosen}

    run_config = {**asdict(config), "variant": variant_name(config), "strategy": strategy_name,
                  "init": init_source, "vgg_weights": str(vgg_weights)}
    trainer = Trainer(
        run_dir, model.train_step, make_dataset, trackables=trackables, total_steps=config.steps,
        strategy=strategy, checkpoint_every=config.checkpoint_every, log_every=config.log_every,
        validate_every=config.validate_every, validate=validate, config=run_config, progress=progress,
    )
    return Session(config, trainer, model, generator, g_optimizer, disc, d_optimizer, init_source)


def train(config: SRGANConfig, run_dir, strategy_name: str = "default", init=None, export=None,
          vgg_weights="imagenet", progress: bool = True) -> dict:
    """Run (or resume) one stage; returns the Trainer's result plus "exported" (a path or None)."""
    session = build(config, run_dir, strategy_name, init, vgg_weights, progress)
    trainer, generator, run_dir = session.trainer, session.generator, Path(run_dir)
    result = trainer.fit()
    result["exported"] = None
    if export and not result["stopped"] and trainer.chief:  # only the chief writes
        from common.checkpoints import save_model

        step, psnr = result["step"], None
        if config.stage == "pretrain" and trainer.restore_best():
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


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def _optional_float(text: str):
    return None if text.lower() in ("none", "off") else float(text)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m srgan.train", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="a configuration (default: the paper's variant for --stage and --content-loss)")
    parser.add_argument("--stage", choices=STAGES)
    parser.add_argument("--content-loss", choices=CONTENT_LOSSES)
    parser.add_argument("--run-dir")
    parser.add_argument("--init", help="gan stage: SRResNet weights to start from: an exported checkpoint "
                        "or a pretrain run folder (default runs/srresnet-mse); 'none' for random weights")
    parser.add_argument("--export", help="write the generator here (.h5 + .weights.h5 + .json): "
                        "the best Set5 step (pretrain) or the last step (gan)")
    parser.add_argument("--strategy", default="default", choices=["default", "mirrored", "multiworker"])
    parser.add_argument("--vgg-weights", default="imagenet",
                        help="VGG19 weights for vgg22/vgg54: 'imagenet' (Keras' cache), a file "
                        "(vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5), or 'random' (smoke tests only)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    skip = {"stage", "content_loss"}
    for f in config_fields():
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = getattr(SRGANConfig(), f.name)
        if isinstance(default, tuple):
            parser.add_argument(flag, nargs="+")
        elif isinstance(default, bool):
            parser.add_argument(flag, type=_bool)
        elif f.name == "lr_decay_at":
            parser.add_argument(flag, type=_optional_float, default=argparse.SUPPRESS,
                                help="fraction of the steps after which the learning rate drops ('none': never)")
        else:
            parser.add_argument(flag, type=type(default))
    return parser.parse_args(argv)


def resolve_config(args) -> tuple[str, SRGANConfig]:
    name = args.preset or preset_for(args.stage or "pretrain", args.content_loss or "mse")
    overrides = {f.name: getattr(args, f.name, None) for f in config_fields()}
    for key, value in overrides.items():
        if isinstance(value, list):
            overrides[key] = tuple(value)
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
    init = args.init
    if config.stage == "gan" and init is None:
        init = "runs/srresnet-mse"
        if _run_checkpoint(Path(init)) is None and tf.train.latest_checkpoint(str(run_dir / "checkpoints")) is None:
            print("error: the gan stage starts from a pretrained SRResNet: train one first "
                  "(--stage pretrain --content-loss mse) or pass --init CHECKPOINT|RUN_DIR "
                  "('--init none' for random weights)", file=sys.stderr)
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
