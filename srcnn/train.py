"""Train SRCNN: python -m srcnn.train [--preset paper|adam] [--scales 3] [--steps N] ...

Runs resume from --run-dir (default runs/srcnn_x{scales}_{preset}); the best Set5 checkpoint is
exported with --export (e.g. 'srcnn/weights/srcnn_x{scale}.h5') together with its JSON.
"""
import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import common  # noqa: F401
from common.chapter import (InitError, add_strategy_argument, check_data_settings, check_run_paths, has_checkpoints,
                            init_generator)
from common.config_cli import CommandParser, SettingError, add_config_arguments, config_from_args
from common.evaluate import evaluate_model
from common.inference import upscale
from common.paths import resolve_data
from common.training import Trainer, TrainingDiverged, export_history, global_average, make_strategy, num_replicas
from srcnn.chapter import CHAPTER
from srcnn.config import PRESETS, SRCNNConfig
from srcnn.data import sub_image_dataset, training_pairs
from srcnn.models import border, srcnn


def make_optimizer(config: SRCNNConfig, lr: float):
    schedule, warmup = lr, config.warmup_steps
    if config.lr_decay == "cosine" or warmup:
        # Keras' cosine ramps start -> target over `warmup` steps, then decays to target * alpha
        # (alpha=1: flat); without warm-up it decays from lr itself.
        start, target = (0.0, lr) if warmup else (lr, None)
        alpha = 1e-2 if config.lr_decay == "cosine" else 1.0
        schedule = keras.optimizers.schedules.CosineDecay(
            start, max(config.steps - warmup, 1), alpha=alpha, warmup_target=target, warmup_steps=warmup)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(schedule)
    return keras.optimizers.SGD(schedule, momentum=config.momentum)


def checkpoint_meta(config: SRCNNConfig, scale: int, steps: int, val: dict | None) -> dict:
    return {
        # the model sees the channels it was trained on (the chapter's declaration says Y)
        **CHAPTER.checkpoint_meta("srcnn", {**config.model_args(), "padding": "reflect"}, scale, color=config.color),
        "trained_scales": list(config.scales),
        "degradation": config.degradation,
        "training_data": "+".join(config.train_data),
        "steps": steps,
        "val_psnr": None if val is None else val.get(f"psnr_x{scale}"),
        "val_data": config.val_data,
        "optimizer": config.optimizer,
    }


def dead_filters(model, images) -> dict:
    """{layer name: indices of ReLU filters that never fire} on `images` (inputs of the model)."""
    names = [layer.name for layer in model.layers if layer.name in ("conv1", "conv2")]
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    peak = {n: None for n in names}
    for image in images:
        for n, out in zip(names, probe(image[None], training=False)):
            m = np.asarray(tf.reduce_max(out, axis=[0, 1, 2]))
            peak[n] = m if peak[n] is None else np.maximum(peak[n], m)
    return {n: np.flatnonzero(peak[n] <= 0) for n in names}


def revive_dead_filters(model, images, seed: int = 0) -> dict:
    """Re-initialise the conv1/conv2 filters whose ReLU never fires on `images` (dead units, e.g.
    after a large learning rate): new weights drawn with the spread of the layer's live filters,
    the median live bias, and zero weights from them into the next layer, so the model's output is
    unchanged and training can put them back to use. Returns {layer: revived indices}."""
    rng = np.random.default_rng(seed)
    dead = dead_filters(model, images)
    following = {"conv1": "conv2", "conv2": "conv3"}
    for name, idx in dead.items():
        if not len(idx):
            continue
        layer, nxt = model.get_layer(name), model.get_layer(following[name])
        kernel, bias = layer.get_weights()
        live = np.setdiff1d(np.arange(kernel.shape[-1]), idx)
        kernel[..., idx] = rng.normal(0, kernel[..., live].std(), kernel[..., idx].shape)
        bias[idx] = np.median(bias[live])
        layer.set_weights([kernel, bias])
        k2, b2 = nxt.get_weights()
        k2[:, :, idx, :] = 0
        nxt.set_weights([k2, b2])
    return {n: [int(i) for i in idx] for n, idx in dead.items()}


class SRCNNStep:
    """SRCNN's update (a common.training.TrainStep): the MSE of the central region, averaged over
    the global batch; conv3, the reconstruction layer, has its own optimizer (the paper's learning
    rate 10x smaller there). Build it in the strategy's scope: it makes the optimizers' slots."""

    metric_names = ("mse",)

    def __init__(self, model, body_optimizer, last_optimizer, global_batch: int):
        self.model, self.global_batch = model, global_batch
        self.body_optimizer, self.last_optimizer = body_optimizer, last_optimizer
        self.last_vars = model.get_layer("conv3").trainable_variables
        self.body_vars = [v for v in model.trainable_variables if all(v is not w for w in self.last_vars)]
        body_optimizer.build(self.body_vars)  # slot variables now, not inside the distributed step
        last_optimizer.build(self.last_vars)
        # The checkpoint's names since the first SRCNN runs: older runs resume by them.
        self.trackables = {"model": model, "body_optimizer": body_optimizer, "last_optimizer": last_optimizer}

    def train_step(self, batch):
        x, target = batch
        with tf.GradientTape() as tape:
            per_example = tf.reduce_mean(tf.square(self.model(x, training=True) - target), axis=[1, 2, 3])
            loss = global_average(per_example, self.global_batch)
        grads = tape.gradient(loss, self.body_vars + self.last_vars)
        self.body_optimizer.apply_gradients(zip(grads[: len(self.body_vars)], self.body_vars))
        self.last_optimizer.apply_gradients(zip(grads[len(self.body_vars):], self.last_vars))
        return {"mse": loss * num_replicas()}


def build(config: SRCNNConfig, run_dir, strategy_name="default", init=None, progress=True,
          revive=False) -> tuple[Trainer, keras.Model]:
    """The run's Trainer (resumed from `run_dir` if it holds a run) and the mirror-padded model
    that validation and export use."""
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(strategy_name)
    b = border(config.f1, config.f2, config.f3)
    with strategy.scope():
        model = srcnn(**config.model_args(), padding="valid")
        infer = srcnn(**config.model_args(), padding="reflect")
        if init and not has_checkpoints(run_dir):  # a resumed run keeps its own weights
            init_generator(model, init)
            if revive:
                images = [p[0] for p in training_pairs(config.train_data[:1], config.scales[0], config.degradation,
                                                         config.color)]
                print(f"revived dead filters: {revive_dead_filters(model, images, config.seed)}")
        step = SRCNNStep(model, make_optimizer(config, config.lr), make_optimizer(config, config.last_layer_lr),
                         config.batch_size)

    def make_dataset(start_step, ctx):  # called only when there are steps left to train
        """This pipeline's share of each global batch (drawn at once with its own seed), split
        into per-replica batches: with one pipeline the replicas together see exactly the
        default strategy's batches, so the strategy does not change what is trained on."""
        pairs = [p for s in config.scales
                 for p in training_pairs(config.train_data, s, config.degradation, config.color, config.seed,
                                         config.degradation_options)]
        per_replica = ctx.get_per_replica_batch_size(config.batch_size)
        local = ctx.num_replicas_in_sync // ctx.num_input_pipelines
        ds = sub_image_dataset(pairs, config.patch, b, per_replica * local, config.stride,
                               seed=config.seed + ctx.input_pipeline_id, start_step=start_step)
        if local == 1:
            return ds
        return ds.unbatch().batch(per_replica, drop_remainder=True)

    val_dir = resolve_data(config.val_data)

    def validate(step):
        """Set5 PSNR/SSIM per scale; "psnr" (the mean over scales) picks the best step."""
        infer.set_weights(model.get_weights())
        metrics = {}
        for s in config.scales:
            meta = checkpoint_meta(config, s, step, None)
            result = evaluate_model(lambda lr: upscale(lr, infer, meta), val_dir, s,
                                    config.degradation, name="srcnn")
            metrics[f"psnr_x{s}"], metrics[f"ssim_x{s}"] = result["psnr"], result["ssim"]
        psnrs = [metrics[f"psnr_x{s}"] for s in config.scales]
        return {"psnr": float(np.mean(psnrs)), **metrics}, None

    trainer = Trainer(
        run_dir, step, make_dataset, total_steps=config.steps, strategy=strategy,
        checkpoint_every=config.checkpoint_every, log_every=config.log_every,
        validate_every=config.validate_every, validate=validate, config=asdict(config), progress=progress,
    )
    return trainer, infer


def train(config: SRCNNConfig, run_dir, strategy_name="default", init=None, export=None,
          progress=True, revive=False) -> dict:
    trainer, infer = build(config, run_dir, strategy_name, init, progress, revive)
    result = trainer.fit()
    if export and not result["stopped"] and trainer.chief:  # only the chief writes
        from common.checkpoints import save_model

        trainer.restore_best()
        infer.set_weights(trainer.checkpoint.model.get_weights())
        best = trainer.best or {}
        for s in config.scales:
            path = export.format(scale=s)
            saved = save_model(infer, path, checkpoint_meta(config, s, best.get("step", result["step"]), best))
            export_history(run_dir, saved, key=f"psnr_x{s}")
            print(f"exported {path} (step {best.get('step')}, Set5 x{s} "
                  f"{best.get(f'psnr_x{s}', float('nan')):.3f} dB)")
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="python -m srcnn.train", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="adam", choices=sorted(PRESETS),
                        help="a configuration: 'paper' (Dong et al.) or 'adam' (the shipped checkpoints' "
                        "recipe) (default: adam)")
    parser.add_argument("--run-dir", help="the run's folder: checkpoints, logs, validation; a run there resumes "
                        "(default: runs/srcnn_x{scales}_{preset})")
    add_strategy_argument(parser)
    parser.add_argument("--init", help="start from this checkpoint's weights (e.g. another scale)")
    parser.add_argument("--revive", action="store_true", help="with --init: re-initialise the filters whose "
                        "ReLU never fires on the first training folder (output unchanged; see revive_dead_filters)")
    parser.add_argument("--export", help="write the best model here (.h5 + .weights.h5 + .json); "
                        "{scale} in the name is replaced, one file per trained scale")
    add_config_arguments(parser, SRCNNConfig, shown=PRESETS["adam"], shown_name="adam")
    return parser


def parse_args(argv=None):
    return build_parser().parse_args(argv)


def check_args(args, config: SRCNNConfig, run_dir) -> None:
    """SettingError for a setting the run cannot use, before anything is built: data folders,
    degradation options, paths, and --revive without --init."""
    check_data_settings(config)
    check_run_paths(args, config, Path(run_dir))
    if args.revive and not args.init:
        raise SettingError("--revive", "needs --init (it re-initialises the dead filters of those weights)")
    if args.export:
        try:
            names = {args.export.format(scale=s) for s in config.scales}
        except (KeyError, IndexError, ValueError) as exc:
            raise SettingError("--export", f"{args.export}: only {{scale}} may be in braces ({exc!r})") from None
        if len(names) < len(config.scales):
            raise SettingError("--export", f"{len(config.scales)} scales are trained: put {{scale}} in the name "
                               "(one file per scale)")
        if any(Path(n).is_dir() for n in names):
            raise SettingError("--export", f"{args.export} is a folder: give a file name (X.h5)")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        config = config_from_args(args, SRCNNConfig, PRESETS[args.preset])
        run_dir = args.run_dir or CHAPTER.run_dir(args.preset, config)
        check_args(args, config, run_dir)
    except ValueError as exc:  # SettingError: "--flag: reason"
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        train(config, run_dir, args.strategy, args.init, args.export, revive=args.revive)
        return 0  # an interrupted run too: it saved its checkpoint
    except (TrainingDiverged, FileNotFoundError, InitError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
