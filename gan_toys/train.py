"""Run a toy GAN experiment of the thesis (§4.3-4.5) and write its figures and metrics.

    python -m gan_toys.train gaussian|mixture|sinusoids [--preset NAME] [--out DIR]
        [--run-dir DIR [--checkpoint-every N]] [--strategy default|mirrored|multiworker]
        [--steps N] [--seed S] [--FIELD VALUE ...]

Every field of the experiment's config (gan_toys.config) is a flag (`... sinusoids --help`);
`--set FIELD=VALUE` is a deprecated alias.

Writes to --out (default runs/gan_toys/<experiment>): config.json, metrics.json and PNG figures
(sinusoids also samples.npy: the final generator's eval_samples images, (n, 50, 50) in [0, 1];
with `ema` > 0 the generator with the averaged weights).
Without --run-dir the run is kept in memory. With it, the run checkpoints there every
--checkpoint-every steps and at the end (the TensorFlow state, and beside each checkpoint the
experiment's state outside TensorFlow: the evaluations and snapshots taken so far and every
step's figures, in state-<step>.npz), and the same command run again resumes from the latest
checkpoint and writes the outputs an uninterrupted run would (timings apart). Ctrl-C / SIGTERM
save a checkpoint and stop (exit code 130).
Under a strategy `batch_size` is the global batch (it must divide by the number of replicas) and
the steps are those of one device with that batch; with `multiworker` (TF_CONFIG) each worker
draws its own data with its own seed and only the chief writes --out.
"""
import common  # noqa: F401  (quiet TensorFlow import)

import argparse
import dataclasses
import io
import json
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from scipy.stats import norm, wasserstein_distance

from common.config_cli import CommandParser, SettingError, add_config_arguments, config_from_args
from common.files import atomic_write_bytes, json_text, write_json
from common.training import Trainer, is_chief, make_strategy
from gan_toys import data, models, plots
from gan_toys.config import CONFIGS, PRESETS, make_config, to_dict
from gan_toys.gan import GAN, METRICS, replica_batches


def checkpoint_steps(steps: int) -> list[int]:
    """100, 1000, 2000, ... up to `steps`, and `steps` itself."""
    marks = [100] + list(range(1000, steps + 1, 1000)) + [steps]
    return sorted({m for m in marks if 0 < m <= steps})


def sample_figure_steps(marks: list[int]) -> list[int]:
    """The checkpoints shown in the samples figure: 100, 1000, 2000 (those reached) and the last."""
    return [m for m in marks if m in (100, 1000, 2000) or m == marks[-1]]


def _save_npy(path: Path, array: np.ndarray) -> None:
    """np.save, atomically (a reader never sees half a file)."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write_bytes(path, buffer.getvalue())


@dataclasses.dataclass(frozen=True)
class Checkpointing:
    """Where and how often a run checkpoints (see the module notes)."""

    run_dir: Path  # the run's folder (a two-GAN experiment uses one subfolder per GAN)
    every: int = 1000  # steps between checkpoints (also one at the last step)

    def sub(self, name: str) -> "Checkpointing":
        return dataclasses.replace(self, run_dir=self.run_dir / name)


class OtherRun(ValueError):
    """The run folder holds a run of another experiment or configuration."""


class Interrupted(Exception):
    """Ctrl-C / SIGTERM stopped a checkpointed run (its checkpoint is saved; run again to resume)."""


_RECORD = "record.json"  # the JSON part of a state file


def _write_state(path: Path, arrays: dict, record: dict) -> None:
    """One state file: named arrays and a JSON record, written atomically (no pickles)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, **{_RECORD: np.array(json_text(record))})
    atomic_write_bytes(path, buffer.getvalue())


def _read_state(path: Path) -> tuple[dict, dict]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files if k != _RECORD}, json.loads(str(f[_RECORD]))


def _state_path(run_dir: Path, step: int) -> Path:
    return run_dir / f"state-{step:08d}.npz"


def _adam(lr: float, config):
    return keras.optimizers.Adam(lr, beta_1=config.beta_1, beta_2=config.beta_2)


def _build_gan(generator_fn, discriminator_fn, config, strategy, noise: str = "normal", seed_offset: int = 0,
               **options):
    """The GAN; `options`: GAN's keywords (instance_noise, real_label, ...)."""
    with strategy.scope():
        gan = GAN(generator_fn(), discriminator_fn(), config.latent_dim, noise=noise,
                  d_steps=config.d_steps, seed=config.seed + seed_offset, **options)
        gan.compile(_adam(config.d_lr, config), _adam(config.g_lr, config))
    return gan


def _batches(config, make_dataset):
    """The experiment's data for the Trainer: global batches of batch_size x d_steps rows, each
    worker drawing its share with the seed config.seed + its index (so one worker draws as before);
    `make_dataset(rows, seed, start)`."""
    return replica_batches(lambda rows, worker, start: make_dataset(rows, config.seed + worker, start),
                           config.batch_size * config.d_steps, config.d_steps)


def _train(gan: GAN, batches, config, strategy, stops, on_stop, checkpointing: Checkpointing | None = None,
           state=None) -> dict:
    """Train `gan` for config.steps steps (up to 500 in one graph call); `on_stop(step)` runs after
    each step listed in `stops` and after the last. Returns each step's figures {metric: array of
    config.steps}.

    `checkpointing` None: in memory. Else the run checkpoints in its run_dir and resumes from there;
    `state` = (dump, load) carries the caller's state outside TensorFlow (what `on_stop` collected):
    `dump()` -> ({name: array}, JSON-able record), saved with every checkpoint (after that step's
    `on_stop`), and `load(arrays, record)` restores it on resume. Raises Interrupted on Ctrl-C.
    """
    dump, load = state or (lambda: ({}, {}), lambda arrays, record: None)
    earlier = {k: np.zeros(0, np.float32) for k in METRICS}  # the figures of the steps before a resume

    def figures() -> dict:
        return {k: np.concatenate([earlier[k], np.asarray([r[k] for r in trainer.history], np.float32)])
                for k in METRICS}

    def save_state(step):
        if not trainer.writes:
            return
        arrays, record = dump()
        _write_state(_state_path(checkpointing.run_dir, step),
                     {**arrays, **{f"history.{k}": v for k, v in figures().items()}}, record)
        # keep the states of the checkpoints kept (and of the one about to be written)
        kept = [int(path.rsplit("-", 1)[1]) for path in trainer.manager.checkpoints]
        for old in checkpointing.run_dir.glob("state-*.npz"):
            if int(old.stem.split("-")[1]) < min(kept, default=step):
                old.unlink(missing_ok=True)

    hooks = [([*stops, config.steps], on_stop)]
    if checkpointing is not None:
        every = checkpointing.every
        hooks.append(([*range(every, config.steps, every), config.steps], save_state))
    trainer = Trainer(checkpointing and checkpointing.run_dir, gan, batches, total_steps=config.steps,
                      strategy=strategy, log_every=1, steps_per_call=500, progress=False, tensorboard=False,
                      checkpoint_every=checkpointing.every if checkpointing else 1000, hooks=hooks)
    start = trainer.resumed_from
    if start:
        path = _state_path(checkpointing.run_dir, start)
        if not path.exists():
            raise RuntimeError(f"{path} is missing: the checkpoint of step {start} cannot be resumed "
                               f"(remove {checkpointing.run_dir} to start again)")
        arrays, record = _read_state(path)
        earlier = {k: arrays.pop(f"history.{k}") for k in METRICS}
        load(arrays, record)
    result = trainer.fit()
    if result["stopped"]:
        save_state(result["step"])
        raise Interrupted(f"checkpoint saved at step {result['step']} in {checkpointing.run_dir}")
    return figures()


class WeightAverager:
    """Uniform average of a model's weights over the snapshots given to `add`."""

    def __init__(self, model):
        self.model, self.total, self.count = model, None, 0

    def add(self):
        weights = self.model.get_weights()
        self.total = weights if self.total is None else [t + w for t, w in zip(self.total, weights)]
        self.count += 1

    def state(self) -> tuple[dict, int]:
        """({"average.<i>": running sum of weight i}, count), to restore with `load`."""
        return {f"average.{i}": t for i, t in enumerate(self.total or [])}, self.count

    def load(self, arrays: dict, count: int):
        """Restore `state()`; `arrays` may hold other names too."""
        sums = [arrays[f"average.{i}"] for i in range(len(self.model.get_weights())) if f"average.{i}" in arrays]
        self.total, self.count = sums or None, count

    def swap_in(self):
        """Load the averaged weights; returns the current ones (to restore with set_weights)."""
        current = self.model.get_weights()
        if self.count:
            self.model.set_weights([t / self.count for t in self.total])
        return current


def _tail_mean(history: dict, n: int) -> dict:
    return {k: float(np.mean(history[k][-n:])) for k in ("d_real", "d_fake", "d_loss", "g_loss")}


def _share_upper(x, means) -> float:
    """Share of samples nearer the first mode than the second."""
    x = np.ravel(x)
    return float(np.mean(np.abs(x - means[0]) < np.abs(x - means[1])))


# ---------------------------------------------------------------- experiments

def run_gaussian(config, out: Path | None, strategy, checkpointing: Checkpointing | None = None) -> dict:
    """§4.3. Final figures use the generator weights averaged over the last `average_last` steps
    (a snapshot every `log_every` steps) and D(.) averaged over the same steps. Figures go to
    `out` (None: no files, as on a worker other than the chief); `checkpointing`: see `_train`."""
    gan = _build_gan(lambda: models.linear_generator(config.latent_dim),
                     lambda: models.mlp_discriminator(config.d_units), config, strategy)
    batches = _batches(config, lambda rows, seed, start: data.gaussian_dataset(rows, config.data_mean, config.data_std,
                                                                               seed=seed, start=start))
    affine = gan.generator.get_layer("affine")
    averager = WeightAverager(gan.generator)
    trace = {"step": [], "mean": [], "std": []}

    def on_stop(step):
        a, b = (float(np.ravel(w)[0]) for w in affine.get_weights())
        trace["step"].append(step), trace["mean"].append(b), trace["std"].append(abs(a))
        if step > config.steps - config.average_last:
            averager.add()

    def dump():
        sums, count = averager.state()
        return sums, {"trace": trace, "averaged": count}

    def load(arrays, record):
        averager.load(arrays, record["averaged"])
        trace.update(record["trace"])

    start = time.perf_counter()
    history = _train(gan, batches, config, strategy, range(config.log_every, config.steps, config.log_every), on_stop,
                     checkpointing, (dump, load))
    train_seconds = time.perf_counter() - start

    last = gan.generate(config.eval_samples)
    averager.swap_in()
    generated = gan.generate(config.eval_samples)
    real = data.sample_gaussian(config.eval_samples, config.data_mean, config.data_std,
                                np.random.default_rng(config.seed + 1000))
    tail = _tail_mean(history, config.average_last)
    metrics = {
        "mean": float(generated.mean()), "std": float(generated.std()),
        "d_real": tail["d_real"], "d_fake": tail["d_fake"],
        "target_mean": config.data_mean, "target_std": config.data_std,
        "a": float(np.ravel(affine.get_weights()[0])[0]), "b": float(np.ravel(affine.get_weights()[1])[0]),
        "averaged_over_last_steps": config.average_last,
        "last_step": {"mean": float(last.mean()), "std": float(last.std()),
                      "d_real": float(history["d_real"][-1]), "d_fake": float(history["d_fake"][-1])},
        "train_seconds": train_seconds,
    }
    metrics["passed"] = bool(abs(metrics["mean"] - config.data_mean) < 0.1
                             and abs(metrics["std"] - config.data_std) < 0.15
                             and abs(metrics["d_real"] - 0.5) < 0.05 and abs(metrics["d_fake"] - 0.5) < 0.05)

    if out is None:
        return metrics
    window = max(1, config.steps // 100)
    plots.plot_probabilities({"Gaussian": history}, out / "probabilities.png", window)
    plots.plot_losses({"Gaussian": history}, out / "losses.png", window)
    plots.plot_moments(trace["step"], trace["mean"], trace["std"], config.data_mean, config.data_std,
                       out / "moments.png")
    xs = np.linspace(config.data_mean - 4 * config.data_std, config.data_mean + 4 * config.data_std, 200)
    plots.plot_histograms(real, {f"generated (step {config.steps}, averaged)": generated},
                          out / "histogram.png", density=(xs, norm.pdf(xs, config.data_mean, config.data_std)))
    np.savez(out / "history.npz", **history, trace_step=trace["step"], trace_mean=trace["mean"],
             trace_std=trace["std"])
    return metrics


def run_mixture(config, out: Path | None, strategy, checkpointing: Checkpointing | None = None) -> dict:
    """§4.4: the same GAN with a generator without and with dropout. Final figures use the
    generator weights averaged over the last `average_last` steps; samples are drawn in inference
    mode (dropout off). `checkpointing`: see `_train` (one subfolder per GAN)."""
    rng = np.random.default_rng(config.seed + 1000)
    real = data.sample_mixture(config.eval_samples, config.means, config.stds, rng)
    real_again = data.sample_mixture(config.eval_samples, config.means, config.stds, rng)
    curve_real = real[:2000]
    results, histories, samples, curves = {}, {}, {}, {}
    start_all = time.perf_counter()
    for offset, (label, dropout) in enumerate((("no_dropout", 0.0), ("dropout", config.dropout))):
        gan = _build_gan(
            lambda: models.mlp_generator(config.latent_dim, config.units, 3, dropout),
            lambda: models.mlp_discriminator(config.units), config, strategy, seed_offset=offset)
        batches = _batches(config, lambda rows, seed, start: data.mixture_dataset(rows, config.means, config.stds,
                                                                                  seed=seed, start=start))
        averager = WeightAverager(gan.generator)
        trace = {"step": [], "wasserstein": [], "share": []}

        def on_stop(step, gan=gan, averager=averager, trace=trace):
            x = gan.generate(2000)
            trace["step"].append(step)
            trace["wasserstein"].append(wasserstein_distance(np.ravel(x), np.ravel(curve_real)))
            trace["share"].append(_share_upper(x, config.means))
            if step > config.steps - config.average_last:
                averager.add()

        def dump(averager=averager, trace=trace):
            sums, count = averager.state()
            return sums, {"trace": trace, "averaged": count}

        def load(arrays, record, averager=averager, trace=trace):
            averager.load(arrays, record["averaged"])
            trace.update(record["trace"])

        start = time.perf_counter()
        history = _train(gan, batches, config, strategy, range(config.log_every, config.steps, config.log_every),
                         on_stop, checkpointing and checkpointing.sub(label), (dump, load))
        seconds = time.perf_counter() - start
        last = gan.generate(config.eval_samples)
        averager.swap_in()
        generated = gan.generate(config.eval_samples)
        tail = _tail_mean(history, config.average_last)
        results[label] = {
            "dropout": dropout,
            "wasserstein": float(wasserstein_distance(np.ravel(generated), np.ravel(real))),
            "share_upper": _share_upper(generated, config.means),
            "mean": float(generated.mean()), "std": float(generated.std()),
            "d_real": tail["d_real"], "d_fake": tail["d_fake"],
            "last_step": {"wasserstein": float(wasserstein_distance(np.ravel(last), np.ravel(real))),
                          "share_upper": _share_upper(last, config.means)},
            "train_seconds": seconds,
        }
        if dropout:  # the same averaged generator sampled with dropout active, as during training
            noisy = gan.generate(config.eval_samples, training=True)
            results[label]["wasserstein_dropout_active"] = float(
                wasserstein_distance(np.ravel(noisy), np.ravel(real)))
        histories[label], samples[label], curves[label] = history, generated, trace
        if out is not None:
            np.savez(out / f"history_{label}.npz", **history, **{f"trace_{k}": v for k, v in trace.items()})

    real_share = _share_upper(real, config.means)
    metrics = {
        **results,
        "real": {"share_upper": real_share, "mean": float(real.mean()), "std": float(real.std()),
                 "wasserstein_real_vs_real": float(wasserstein_distance(np.ravel(real), np.ravel(real_again)))},
        "averaged_over_last_steps": config.average_last,
        "train_seconds": time.perf_counter() - start_all,
    }
    metrics["passed"] = bool(all(abs(results[k]["share_upper"] - 0.5) < 0.1 for k in results))
    if out is None:
        return metrics

    window = max(1, config.steps // 50)
    plots.plot_probabilities(histories, out / "probabilities.png", window)
    plots.plot_losses(histories, out / "losses.png", window)
    xs = np.linspace(-10, 16, 400)
    pdf = sum(0.5 * norm.pdf(xs, m, s) for m, s in zip(config.means, config.stds))
    plots.plot_histograms(real, {f"{k} (W1 {results[k]['wasserstein']:.3f})": samples[k] for k in samples},
                          out / "histograms.png", density=(xs, pdf))
    plots.plot_curves({k: (c["step"], c["wasserstein"]) for k, c in curves.items()}, out / "wasserstein.png",
                      ylabel="W1(generated, real), 2000 samples")
    return metrics


def run_sinusoids(config, out: Path | None, strategy, checkpointing: Checkpointing | None = None) -> dict:
    """§4.5: generated images and their fit quality at steps 100, 1000, 2000, ...; the samples
    figure (100, 1000, 2000, last), the final phase histogram and samples.npy. `checkpointing`:
    see `_train`."""
    image_kw = dict(size=config.size, cycles=config.cycles, amplitude=config.amplitude,
                    half_width=config.half_width)
    gan = _build_gan(
        # several replicas: batch statistics of the global batch, as on one device
        lambda: models.conv_generator(config.latent_dim, config.g_filters, config.l2, config.batch_norm,
                                      leaky=config.g_leaky, synchronized=strategy.num_replicas_in_sync > 1,
                                      bias=config.g_bias),
        lambda: models.conv_discriminator(config.size, config.d_filters, l2=config.l2),
        config, strategy, noise="uniform", instance_noise=config.instance_noise, real_label=config.real_label,
        mode_seeking=config.mode_seeking, ema=config.ema)
    batches = _batches(config, lambda rows, seed, start: data.sinusoid_dataset(rows, seed=seed, start=start,
                                                                               **image_kw))
    fitter = data.SinusoidFit(**image_kw)
    real = data.sinusoid_images(np.random.default_rng(config.seed + 1000).uniform(0, 360, config.eval_samples),
                                **image_kw).numpy()
    if out is not None:
        plots.plot_image_grid(real[:32], out / "real.png", "real")
    checkpoints, shown, final_images = [], {}, []
    marks = checkpoint_steps(config.steps)
    figure_steps = sample_figure_steps(marks)

    def on_stop(step):
        gan.instance_noise.assign(config.instance_noise
                                  + (config.instance_noise_end - config.instance_noise) * step / config.steps)
        if step not in marks:
            return
        z = gan.sample_noise(config.eval_samples)
        images = gan.generate(z=z, ema=config.ema > 0)
        quality = fitter.quality(images, config.fit_threshold)
        if config.ema:  # the last weights' images too, from the same noise
            quality["last_weights"] = fitter.quality(gan.generate(z=z), config.fit_threshold)
        checkpoints.append({"step": step, **quality})
        if step in figure_steps:
            shown[step] = images[:16]
        if step == config.steps:
            final_images.append(images)
        if out is None:
            return
        plots.plot_image_grid(images[:32], out / f"samples_step{step:06d}.png", f"step {step}")
        print(f"step {step}: good share {quality['good_share']:.3f}, mean fit {quality['mean_score']:.3f}, "
              f"phase entropy {quality['phase_entropy_all']:.3f}", flush=True)

    def dump():
        arrays = {f"shown.{step}": images for step, images in shown.items()}
        return {**arrays, **{"final": images for images in final_images}}, {"checkpoints": checkpoints}

    def load(arrays, record):
        checkpoints.extend(record["checkpoints"])
        shown.update({int(k.split(".")[1]): v for k, v in arrays.items() if k.startswith("shown.")})
        final_images.extend([arrays["final"]] if "final" in arrays else [])

    start = time.perf_counter()
    stops = sorted(set(marks) | set(range(config.log_every, config.steps, config.log_every)))
    history = _train(gan, batches, config, strategy, stops, on_stop, checkpointing, (dump, load))
    train_seconds = time.perf_counter() - start
    final = checkpoints[-1]
    counts = np.asarray(final["phase_counts_all"])
    metrics = {
        "good_share": final["good_share"], "mean_score": final["mean_score"],
        "median_score": final["median_score"], "phase_entropy": final["phase_entropy"],
        "phase_entropy_all": final["phase_entropy_all"],
        "phase_counts": counts.tolist(), "phase_min_bin": int(counts.min()),
        # the bar: every 30-degree bin holds at least a third of its fair share
        "phase_bins_ok": bool(counts.min() * len(counts) * 3 >= counts.sum()),
        "checkpoints": checkpoints,
        "real": fitter.quality(real, config.fit_threshold),
        "d_real": float(np.mean(history["d_real"][-100:])), "d_fake": float(np.mean(history["d_fake"][-100:])),
        "fit_threshold": config.fit_threshold,
        "train_seconds": train_seconds,
    }
    metrics["passed"] = bool(metrics["good_share"] >= 0.8 and metrics["phase_bins_ok"])
    if out is None:
        return metrics
    samples = np.clip(final_images[0][..., 0], 0.0, 1.0).astype(np.float32)  # (n, size, size)
    _save_npy(out / "samples.npy", samples)
    plots.plot_sample_steps(shown, out / "samples.png")
    plots.plot_phase_histogram(final["phase_counts_all"], final["phase_counts_good"], out / "phase_histogram.png",
                               f"fitted phases of {len(samples)} generated images, step {config.steps}",
                               config.fit_threshold)
    window = max(1, config.steps // 50)
    plots.plot_probabilities({"sinusoids": history}, out / "probabilities.png", window)
    plots.plot_losses({"sinusoids": history}, out / "losses.png", window)
    steps = [c["step"] for c in checkpoints]
    plots.plot_curves({f"share with fit >= {config.fit_threshold}": (steps, [c["good_share"] for c in checkpoints]),
                       "mean fit score": (steps, [c["mean_score"] for c in checkpoints]),
                       "phase entropy (all samples)": (steps, [c["phase_entropy_all"] for c in checkpoints])},
                      out / "quality.png", ylabel="value", ylim=(0, 1.05))
    np.savez(out / "history.npz", **history)
    return metrics


EXPERIMENTS = {"gaussian": run_gaussian, "mixture": run_mixture, "sinusoids": run_sinusoids}


def run(experiment: str, out, overrides: dict | None = None, strategy="default", preset: str = "default",
        checkpointing: Checkpointing | None = None) -> dict:
    """Run one experiment; writes config.json, metrics.json and figures to `out`; returns the metrics
    (and "chief": whether this process wrote them).

    `checkpointing` None: in memory; else the run checkpoints in its run_dir and resumes from it
    (which must hold a run of the same experiment and configuration, or none).

    `overrides`: {field: value} replacing the preset's (gan_toys.config.PRESETS). `strategy`:
    default | mirrored | multiworker (see common.training.make_strategy) or a
    `tf.distribute.Strategy`. Only the chief (worker 0) writes; every worker returns the metrics.
    """
    config = make_config(experiment, overrides, preset)
    # first: a multi-worker strategy must be set up before TensorFlow does anything else
    distribution = strategy if isinstance(strategy, tf.distribute.Strategy) else make_strategy(strategy)
    name = strategy if isinstance(strategy, str) else type(strategy).__name__
    chief = is_chief(distribution)
    out = Path(out)
    settings = {"experiment": experiment, **to_dict(config), "preset": preset, "strategy": name}
    if checkpointing is not None:
        _check_same_run(checkpointing.run_dir / "config.json", settings, chief)
    if chief:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", {k: v for k, v in settings.items() if k != "experiment"})
    keras.utils.set_random_seed(config.seed)
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    metrics = EXPERIMENTS[experiment](config, out if chief else None, distribution, checkpointing)
    metrics = {"experiment": experiment, "preset": preset, "steps": config.steps, "seed": config.seed, **metrics,
               "strategy": name, "replicas": distribution.num_replicas_in_sync,
               "total_seconds": time.perf_counter() - start, "cpu_seconds": _cpu_seconds() - cpu_start}
    if chief:
        write_json(out / "metrics.json", metrics)
    return {**metrics, "chief": chief}


def _check_same_run(path: Path, settings: dict, chief: bool) -> None:
    """A run folder resumes only the run it was made for: its config.json must match `settings`
    (a new folder gets them)."""
    settings = json.loads(json_text(settings))  # as read back (tuples as lists)
    if path.exists():
        saved = json.loads(path.read_text())
        if saved != settings:
            changed = sorted(k for k in settings.keys() | saved.keys() if saved.get(k) != settings.get(k))
            raise OtherRun(f"{path.parent} holds a run with other settings ({', '.join(changed)}); "
                             "use another --run-dir or the same settings")
    elif chief:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, settings)


def _cpu_seconds() -> float:
    """User + system CPU time of this process so far (all its threads)."""
    times = os.times()
    return times.user + times.system


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="python -m gan_toys.train", description=__doc__.split("\n")[0],
                                     epilog="python -m gan_toys.train EXPERIMENT --help lists its settings.")
    experiments = parser.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT",
                                        help="gaussian (§4.3), mixture (§4.4) or sinusoids (§4.5)")
    for name, cls in CONFIGS.items():
        summary = cls.__doc__.strip().split("\n")[0]
        sub = experiments.add_parser(name, help=summary, description=summary)
        presets = PRESETS[name]
        sub.add_argument("--preset", choices=sorted(presets), default="default",
                         help="a named configuration of gan_toys.config.PRESETS; the flags below replace "
                              "its values (default: default)")
        sub.add_argument("--out", help=f"output directory (default: runs/gan_toys/{name})")
        sub.add_argument("--run-dir", help="the run's folder: checkpoints and the state beside them; the same "
                                            "command run again resumes there (default: none, the run is kept "
                                            "in memory)")
        sub.add_argument("--checkpoint-every", type=int, default=1000, metavar="STEPS",
                         help="with --run-dir: steps between checkpoints; one is also written at the last "
                              "step (default: 1000)")
        sub.add_argument("--strategy", choices=("default", "mirrored", "multiworker"), default="default",
                         help="tf.distribute strategy (multiworker: configured by TF_CONFIG) (default: default)")
        sub.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                         help="deprecated alias of --NAME VALUE (repeatable)")
        add_config_arguments(sub, cls, shown=presets["default"], shown_name="default")
    return parser


def parse_args(argv=None):
    return build_parser().parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cls = CONFIGS[args.experiment]
    try:
        base = make_config(args.experiment, preset=args.preset)
        if args.set:
            print("warning: --set NAME=VALUE is deprecated; use --NAME VALUE", file=sys.stderr)
            if any("=" not in item for item in args.set):
                raise SettingError("--set", f"takes NAME=VALUE, not {next(i for i in args.set if '=' not in i)!r}")
            base = make_config(args.experiment, dict(item.split("=", 1) for item in args.set), args.preset)
        config = config_from_args(args, cls, base)  # flags given replace --set values
        if args.checkpoint_every < 1:
            raise SettingError("--checkpoint-every", f"must be at least 1, not {args.checkpoint_every}")
        if args.run_dir and Path(args.run_dir).exists() and not Path(args.run_dir).is_dir():
            raise SettingError("--run-dir", f"{args.run_dir} is a file, not a folder")
        if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
            raise SettingError("--out", f"{args.out} is a file, not a folder")
    except ValueError as exc:  # SettingError: "--flag: reason"
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or os.path.join("runs", "gan_toys", args.experiment)
    checkpointing = Checkpointing(Path(args.run_dir), args.checkpoint_every) if args.run_dir else None
    try:
        metrics = run(args.experiment, out, dataclasses.asdict(config), args.strategy, args.preset, checkpointing)
    except Interrupted as exc:
        print(f"interrupted: {exc}; run the same command again to resume", file=sys.stderr)
        return 130
    except OtherRun as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
    print(json.dumps(summary, indent=2))
    if metrics["chief"]:
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
