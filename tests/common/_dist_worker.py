"""Subprocess workers for tests/common/test_distribute.py (run as scripts, never collected).

    python tests/common/_dist_worker.py mirrored OUT_DIR TRAIN_DIR VAL_DIR
        splits the CPU into two logical devices (before TensorFlow initialises them) and trains
        tiny SRResNets under the default strategy and under MirroredStrategy; writes OUT_DIR/*.npz.
    python tests/common/_dist_worker.py gan_toys_mirrored OUT_DIR
        the same for `gan_toys.train.run` (sinusoids, tiny); writes OUT_DIR/*.npz.
    python tests/common/_dist_worker.py gan_toys OUT -- GAN_TOYS_TRAIN_ARGS...
        one worker of a cluster running `python -m gan_toys.train`; dumps its GANs' weights and
        what it wrote to OUT.npz / OUT.json.
    python tests/common/_dist_worker.py srgan OUT [--hold] -- SRGAN_TRAIN_ARGS...
        one worker of a cluster (TF_CONFIG is set by the caller): runs `python -m srgan.train`
        and dumps the weights after training and what the Trainer did to OUT.npz / OUT.json.
        --hold: wait after the first checkpoint until the file OUT.release exists (at most 200 s),
        so that the test can kill or signal the workers at a known step.
"""
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import common  # noqa: E402,F401  (quiet TensorFlow import)
import tensorflow as tf  # noqa: E402

GLOBAL_BATCH = 4
STEPS = 3


def split_cpu(n: int = 2):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)


# --- MirroredStrategy against the default strategy --------------------------------------------
def fixed_batches(steps: int = STEPS):
    """The same global batches for every run: (lr 4x4, hr 16x16) images, seeded."""
    import numpy as np

    rng = np.random.default_rng(7)
    hr = rng.uniform(0, 1, (steps * GLOBAL_BATCH, 16, 16, 3)).astype("float32")
    lr = hr.reshape(-1, 4, 4, 4, 4, 3).mean(axis=(2, 4)).astype("float32")
    return lr, hr


def fixed_run(strategy, run_dir, batch_norm, initial=None, steps=STEPS, sync_statistics=True):
    """SRResNet pretraining steps on `fixed_batches` through common.training.Trainer."""
    import keras

    from common.training import Trainer
    from srgan.gan import SRResNetTrainer
    from srgan.losses import PixelMSE
    from srgan.models import srresnet

    lr, hr = fixed_batches(steps)

    def make_dataset(start_step, ctx):
        # consecutive per-replica batches go to replicas 0, 1, ...: one global batch per step
        per_replica = ctx.get_per_replica_batch_size(GLOBAL_BATCH)
        ds = tf.data.Dataset.from_tensor_slices((lr, hr)).skip(start_step * GLOBAL_BATCH)
        return ds.batch(per_replica, drop_remainder=True)

    with strategy.scope():
        keras.utils.set_random_seed(0)
        generator = srresnet(num_filters=8, num_blocks=1, batch_norm=batch_norm)
        optimizer = keras.optimizers.Adam(1e-3)
        model = SRResNetTrainer(generator, PixelMSE())
        model.compile(optimizer)
        if initial is not None:
            generator.set_weights(initial)
        start = generator.get_weights()
    trainer = Trainer(run_dir, model.train_step, make_dataset, {"generator": generator, "optimizer": optimizer},
                      total_steps=steps, strategy=strategy, checkpoint_every=1000, log_every=1,
                      progress=False)
    if not sync_statistics:
        trainer._statistics = []  # what Keras alone does: each replica keeps its own BN statistics
    result = trainer.fit()
    losses = [h["content"] for h in trainer.history]
    return generator, result, losses, start


def replica_spread(model) -> float:
    """Largest difference between the replicas' copies of any variable (0 outside a strategy)."""
    import numpy as np

    spread = 0.0
    for v in model.weights:
        copies = [c.numpy() for c in getattr(v.value, "values", [v.value])]
        spread = max([spread] + [float(np.abs(c - copies[0]).max()) for c in copies[1:]])
    return spread


def mirrored(out_dir, train_dir, val_dir):
    import numpy as np

    split_cpu(2)
    from dataclasses import replace

    import keras

    from common.training import make_strategy

    out_dir = Path(out_dir)
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    default = make_strategy("default")
    mirror = make_strategy("mirrored")  # every logical CPU when there is no GPU
    info = {"devices": devices, "replicas": mirror.num_replicas_in_sync}
    timings = {}

    # 1. fixed batches, no BN: the strategy must not change the arithmetic
    t = time.time()
    g_default, _, loss_default, initial = fixed_run(default, out_dir / "fixed-default", False)
    g_mirror, _, loss_mirror, _ = fixed_run(mirror, out_dir / "fixed-mirrored", False, initial)
    np.savez(out_dir / "fixed.npz", initial=np.concatenate([w.ravel() for w in initial]),
             default=np.concatenate([w.ravel() for w in g_default.get_weights()]),
             mirrored=np.concatenate([w.ravel() for w in g_mirror.get_weights()]))
    info.update(fixed_losses={"default": loss_default, "mirrored": loss_mirror},
                fixed_spread=replica_spread(g_mirror))
    timings["fixed"] = time.time() - t

    # 2. BN: per-replica batch statistics; moving statistics averaged over replicas by the Trainer
    t = time.time()
    bn_default, _, _, bn_initial = fixed_run(default, out_dir / "bn-default", True, steps=1)
    bn_mirror, _, _, _ = fixed_run(mirror, out_dir / "bn-mirrored", True, bn_initial, steps=1)
    bn_unsynced, _, _, _ = fixed_run(mirror, out_dir / "bn-unsynced", True, bn_initial, steps=1,
                                     sync_statistics=False)

    first = {"default": bn_default.get_layer("block1_bn1"), "mirrored": bn_mirror.get_layer("block1_bn1")}
    np.savez(out_dir / "bn.npz", **{f"{name}_mean": bn.moving_mean.numpy() for name, bn in first.items()},
             **{f"{name}_var": bn.moving_variance.numpy() for name, bn in first.items()})
    info.update(bn_spread=replica_spread(bn_mirror), bn_unsynced_spread=replica_spread(bn_unsynced),
                bn_weights_finite=all(bool(np.isfinite(w).all()) for w in bn_mirror.get_weights()))
    timings["bn"] = time.time() - t

    # 3. the chapter trainer itself (srgan.train, its tf.data pipeline), default vs mirrored
    t = time.time()
    from srgan import train as srgan_train
    from srgan.config import PRESETS

    config = replace(PRESETS["tiny"], train_data=(str(train_dir),), val_data=str(val_dir), hr_patch=16,
                     batch_size=2, batch_norm=False, steps=STEPS, checkpoint_every=1000, validate_every=1000)
    weights = {}
    for name in ("default", "mirrored"):
        keras.utils.set_random_seed(0)
        session = srgan_train.build(config, out_dir / f"srgan-{name}", name, vgg_weights=None, progress=False)
        if name == "mirrored":
            info["srgan_seeded_init_equal"] = all(
                np.array_equal(a, b) for a, b in zip(start, session.generator.get_weights()))
            session.generator.set_weights(start)
        else:
            start = session.generator.get_weights()
        info[f"srgan_{name}_replicas"] = session.trainer.strategy.num_replicas_in_sync
        session.trainer.fit()
        weights[name] = np.concatenate([w.ravel() for w in session.generator.get_weights()])
    np.savez(out_dir / "srgan.npz", initial=np.concatenate([w.ravel() for w in start]), **weights)
    timings["srgan"] = time.time() - t

    # 4. srcnn.train, default vs mirrored, after the strategies above (a later MirroredStrategy
    #    in the same process used to fail: see common.training._new_mirrored_strategy)
    t = time.time()
    srcnn = {name: srcnn_run(name, out_dir / f"srcnn-{name}", train_dir, val_dir) for name in ("default", "mirrored")}
    np.savez(out_dir / "srcnn.npz", **{f"{name}_{k}": r.pop(k) for name, r in srcnn.items()
                                       for k in ("initial", "weights") if k in r})
    info["srcnn"] = srcnn
    timings["srcnn"] = time.time() - t

    info["timings"] = timings
    (out_dir / "info.json").write_text(json.dumps(info, indent=1))


def srcnn_run(strategy_name, run_dir, train_dir, val_dir) -> dict:
    """A tiny `srcnn.train.train` run: its result, or the error it raised (shown by the test)."""
    import numpy as np

    from common import training
    from srcnn import train as srcnn_train
    from srcnn.config import SRCNNConfig

    trainers, initial = [], []
    init = training.Trainer.__init__

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        trainers.append(self)
        initial.append(np.concatenate([w.ravel() for w in self.checkpoint.model.get_weights()]))

    training.Trainer.__init__ = recording_init
    config = SRCNNConfig(n1=8, n2=4, train_data=(str(train_dir),), val_data=str(val_dir), patch=21,
                         stride=None, batch_size=GLOBAL_BATCH, optimizer="adam", lr=1e-3, steps=STEPS,
                         validate_every=STEPS, checkpoint_every=STEPS, log_every=1)
    try:
        result = srcnn_train.train(config, run_dir, strategy_name, progress=False)
    except Exception as exc:  # reported to the test, which shows it
        return {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"}
    finally:
        training.Trainer.__init__ = init
    trainer = trainers[-1]
    model = trainer.checkpoint.model
    return {"error": None, "step": result["step"], "losses": [h["mse"] for h in trainer.history],
            "replicas": trainer.strategy.num_replicas_in_sync, "spread": replica_spread(model),
            "initial": initial[-1], "weights": np.concatenate([w.ravel() for w in model.get_weights()])}


# --- gan_toys: MirroredStrategy against the default strategy ----------------------------------
GAN_TOYS_SETTINGS = {"steps": 4, "batch_size": 4, "d_steps": 2, "eval_samples": 8, "log_every": 2,
                     "g_filters": 4, "d_filters": 4}


def record_gans():
    """Patch gan_toys.train._build_gan to keep the GANs it builds; returns their list."""
    from gan_toys import train as gan_train

    gans, build = [], gan_train._build_gan

    def recording_build(*args, **kwargs):
        gans.append(build(*args, **kwargs))
        return gans[-1]

    gan_train._build_gan = recording_build
    return gans


def gan_weights(gan) -> dict:
    return {**{f"generator/{i}": w for i, w in enumerate(gan.generator.get_weights())},
            **{f"discriminator/{i}": w for i, w in enumerate(gan.discriminator.get_weights())}}


def gan_toys_mirrored(out_dir):
    """`gan_toys.train.run("sinusoids", ...)` (BN, instance noise, 2 discriminator steps per
    generator step) under the default strategy and under MirroredStrategy on 2 logical CPUs;
    writes OUT_DIR/{default,mirrored}.npz (final weights, per-step history) and info.json."""
    import numpy as np

    split_cpu(2)
    from gan_toys import train as gan_train

    out_dir = Path(out_dir)
    gans, info = record_gans(), {}
    for name in ("default", "mirrored"):
        t = time.time()
        metrics = gan_train.run("sinusoids", out_dir / name, dict(GAN_TOYS_SETTINGS), name)
        with np.load(out_dir / name / "history.npz") as history:
            arrays = {f"history/{k}": history[k] for k in history.files}
        np.savez(out_dir / f"{name}.npz", **gan_weights(gans[-1]), **arrays)
        info[name] = {"replicas": metrics["replicas"], "chief": metrics["chief"], "seconds": time.time() - t,
                      "synchronized_bn": [layer.synchronized for layer in gans[-1].generator.layers
                                          if hasattr(layer, "synchronized")]}
    (out_dir / "info.json").write_text(json.dumps(info, indent=1))


# --- one worker of a MultiWorkerMirroredStrategy cluster --------------------------------------
def audit_writes(run_dir: Path) -> list:
    """Record this process's Python-level writes into `run_dir` (in the returned list)."""
    writes = []

    def audit(event, args):
        if event == "open" and args[0] is not None and isinstance(args[0], (str, bytes, os.PathLike)):
            mode = args[1] or "r"
            if any(c in str(mode) for c in "wax+") and str(run_dir) in os.path.abspath(os.fsdecode(args[0])):
                writes.append(["open", os.fsdecode(args[0])])
        elif event in ("os.rename", "os.replace", "os.mkdir", "os.remove", "shutil.rmtree"):
            if str(run_dir) in os.path.abspath(os.fsdecode(args[0])):
                writes.append([event, os.fsdecode(args[0])])

    sys.addaudithook(audit)
    return writes


def gan_toys_worker(out, argv):
    """One worker running `python -m gan_toys.train ARGV` (with --strategy multiworker)."""
    import numpy as np

    from gan_toys import train as gan_train

    out = Path(out)
    writes = audit_writes(Path(argv[argv.index("--out") + 1]).resolve())
    gans, results = record_gans(), []
    run = gan_train.run

    def recording_run(*args, **kwargs):
        results.append(run(*args, **kwargs))
        return results[-1]

    gan_train.run = recording_run
    code = gan_train.main(argv)
    np.savez(out.with_suffix(".npz"), **{f"{i}/{k}": w for i, gan in enumerate(gans)
                                         for k, w in gan_weights(gan).items()})
    metrics = results[0]
    report = {"code": code, "chief": metrics["chief"], "replicas": metrics["replicas"], "gans": len(gans),
              "d_real": metrics.get("d_real"), "writes_into_run_dir": writes}
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    return code


def srgan_worker(out, hold, argv):
    import numpy as np

    from common import chapter, training
    from srgan import train as srgan_train

    out = Path(out)
    run_dir = Path(argv[argv.index("--run-dir") + 1]).resolve()
    writes = audit_writes(run_dir)
    sessions, starts = [], []
    fit_and_export = chapter.fit_and_export  # what the chapter's train calls with its built session

    def recording_fit_and_export(session, *args, **kwargs):
        sessions.append(session)
        starts.append(int(session.trainer.step.numpy()))  # restored from the chief's checkpoint
        return fit_and_export(session, *args, **kwargs)

    chapter.fit_and_export = recording_fit_and_export
    finished = {}
    fit = training.Trainer.fit

    def recording_fit(self):  # the state right after training (an export may restore the best step)
        result = fit(self)
        session = sessions[-1]
        finished.update(step=int(self.step.numpy()), g_iterations=int(session.g_optimizer.iterations.numpy()))
        finished["arrays"] = {f"generator/{i}": w for i, w in enumerate(session.generator.get_weights())}
        if session.discriminator is not None:
            finished["arrays"].update(
                {f"discriminator/{i}": w for i, w in enumerate(session.discriminator.get_weights())})
        return result

    training.Trainer.fit = recording_fit
    if hold:
        save = training.Trainer.save
        release, held = out.with_suffix(".release"), []

        def holding_save(self):
            path = save(self)
            deadline = time.monotonic() + 200
            while not held and not release.exists() and time.monotonic() < deadline:
                time.sleep(0.1)  # the test kills or signals the workers here
            held.append(path)
            return path

        training.Trainer.save = holding_save

    code = srgan_train.main(argv)
    session = sessions[0]
    trainer = session.trainer
    np.savez(out.with_suffix(".npz"), **finished["arrays"])
    report = {
        "code": code, "chief": trainer.chief, "replicas": trainer.strategy.num_replicas_in_sync,
        "strategy": type(trainer.strategy).__name__, "step": finished["step"],
        "resumed_from": starts[0],
        "first_logged_step": trainer.history[0]["step"] if trainer.history else None,
        "g_iterations": finished["g_iterations"],
        "scratch_dir": None if trainer.scratch_dir is None else str(trainer.scratch_dir),
        "checkpoint_dirs": [trainer.manager.directory, trainer.best_manager.directory],
        "writes_into_run_dir": writes,
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    return code


if __name__ == "__main__":
    if sys.argv[1] == "mirrored":
        mirrored(*sys.argv[2:5])
    elif sys.argv[1] == "gan_toys_mirrored":
        gan_toys_mirrored(sys.argv[2])
    elif sys.argv[1] in ("srgan", "gan_toys"):
        rest = sys.argv[2:]
        split = rest.index("--")
        options, argv = rest[:split], rest[split + 1:]
        if sys.argv[1] == "gan_toys":
            sys.exit(gan_toys_worker(options[0], argv))
        sys.exit(srgan_worker(options[0], "--hold" in options, argv))
    else:
        sys.exit(f"unknown mode {sys.argv[1]!r}")
