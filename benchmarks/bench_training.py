"""Training speed: steps per second of every chapter's trainer, and tf.data patches per second.

    python -m benchmarks.bench_training [--only srcnn srgan esrgan gan_toys] [--quick] [--pipeline-seconds 10]
        [--json OUT]

Each image chapter is timed through its own `train()` (srcnn.train, srgan.train, esrgan.train: the
common.training.Trainer loop with its real data pipeline) in a temporary run folder, validation
off, for `warm-up + timed` steps; the steady rate is timed steps / the time between the end of the
last warm-up step and the end of the last step (read from the Trainer's per-step log calls).
Configurations: the recipes the shipped checkpoints use (SRCNN `adam`, on T91 only to save its
data preparation, SRResNet `srresnet-cpu`,
RRDB `cpu`) and the papers' sizes (SRResNet-MSE, SRGAN-VGG54, RRDB PSNR and GAN stages); the
GAN stages use a randomly initialised VGG19 (its speed does not depend on the weights, and the
ImageNet file may be missing offline). The toy GANs (chapters 3-4) are timed over a whole
`gan_toys.train.run` (tracing included). The input pipeline (common.data.train_dataset, the
SRGAN setting: 96x96 HR crops of T91, x4, batch 16) is timed as in benchmarks.bench_pipeline.
`--quick` times only the PSNR-stage trainers with the tiny presets, Set5 as training data and 3 timed
steps (no GAN stages, no toy GANs).
"""
import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import common  # noqa: F401  (quiet TensorFlow import)

from benchmarks.bench_quality import environment, format_environment, write_result

CHAPTERS = ("srcnn", "srgan", "esrgan", "gan_toys")


def configs(quick: bool) -> list[dict]:
    """[{key, chapter, label, config, warmup, steps}] of the trainings timed."""
    from esrgan.config import PRESETS as ESRGAN
    from srcnn.config import PRESETS as SRCNN
    from srgan.config import PRESETS as SRGAN

    off = dict(validate_every=0, checkpoint_every=10**9, log_every=1)
    if quick:
        data = dict(train_data=("Set5",))
        return [
            {"key": "srcnn", "chapter": "srcnn", "label": "SRCNN 9-5-5, tiny (n1 8, n2 4, batch 4 of 33x33)",
             "config": replace(SRCNN["adam"], n1=8, n2=4, batch_size=4, patch=33, scales=(3,), **data, **off),
             "warmup": 2, "steps": 3},
            {"key": "srresnet", "chapter": "srgan", "label": "SRResNet, tiny preset",
             "config": replace(SRGAN["tiny"], **data, **off), "warmup": 2, "steps": 3},
            {"key": "rrdb_psnr", "chapter": "esrgan", "label": "RRDB PSNR stage, tiny preset",
             "config": replace(ESRGAN["tiny"], **data, **off), "warmup": 2, "steps": 3},
        ]
    return [
        {"key": "srcnn", "chapter": "srcnn", "label": "SRCNN 9-5-5 Y, shipped recipe (adam: batch 32 of 56x56, x2+x3+x4; T91 only)",
         "config": replace(SRCNN["adam"], train_data=("T91",), **off), "warmup": 5, "steps": 50},
        {"key": "srcnn_paper", "chapter": "srcnn", "label": "SRCNN 9-5-5 Y, paper (batch 128 of 33x33, x3)",
         "config": replace(SRCNN["paper"], **off), "warmup": 5, "steps": 20},
        {"key": "srresnet_cpu", "chapter": "srgan", "label": "SRResNet, shipped recipe (srresnet-cpu: batch 16 of 64x64, L1)",
         "config": replace(SRGAN["srresnet-cpu"], **off), "warmup": 2, "steps": 5},
        {"key": "srresnet", "chapter": "srgan", "label": "SRResNet-MSE, paper (batch 16 of 96x96)",
         "config": replace(SRGAN["srresnet-mse"], **off), "warmup": 2, "steps": 3},
        {"key": "srgan", "chapter": "srgan", "label": "SRGAN-VGG54, paper (batch 16 of 96x96, G + D)",
         "config": replace(SRGAN["srgan-vgg54"], **off), "warmup": 2, "steps": 2},
        {"key": "rrdb_cpu", "chapter": "esrgan", "label": "RRDB PSNR stage, cpu preset (6 blocks x 32, batch 16 of 64x64)",
         "config": replace(ESRGAN["cpu"], **off), "warmup": 2, "steps": 5},
        {"key": "rrdb_psnr", "chapter": "esrgan", "label": "RRDB PSNR stage, paper (23 blocks, batch 16 of 128x128)",
         "config": replace(ESRGAN["psnr"], **off), "warmup": 1, "steps": 1},
        {"key": "esrgan", "chapter": "esrgan", "label": "ESRGAN GAN stage, paper (23 blocks + D + VGG)",
         "config": replace(ESRGAN["gan"], **off), "warmup": 1, "steps": 1},
        {"key": "gan_toys_gaussian", "chapter": "gan_toys", "label": "toy GAN: Gaussian (4,000 steps, default)",
         "experiment": "gaussian", "steps": 4000},
        {"key": "gan_toys_sinusoids", "chapter": "gan_toys", "label": "toy GAN: sinusoids (300 steps)",
         "experiment": "sinusoids", "steps": 300},
    ]


def time_trainer(item: dict, run_dir: Path) -> dict:
    """Run the chapter's train() for warm-up + timed steps; timestamps from Trainer._log (log_every=1)."""
    from common import training

    config = replace(item["config"], steps=item["warmup"] + item["steps"])
    stamps = []
    original = training.Trainer._log

    def _log(self, step, means):
        stamps.append((step, time.perf_counter()))
        original(self, step, means)

    training.Trainer._log = _log
    start = time.perf_counter()
    try:
        if item["chapter"] == "srcnn":
            from srcnn.train import train

            train(config, run_dir, progress=False)
        elif item["chapter"] == "srgan":
            from srgan.train import train

            train(config, run_dir, vgg_weights=None, progress=False)
        else:
            from esrgan.train import train

            train(config, run_dir, vgg_weights=None, progress=False)
    finally:
        training.Trainer._log = original
    total = time.perf_counter() - start
    times = dict(stamps)
    first, last = item["warmup"], item["warmup"] + item["steps"]
    if first not in times or last not in times:
        raise RuntimeError("common.training.Trainer._log was not called after every step (log_every=1): "
                           "the timing hook of this benchmark needs updating")
    seconds = times[last] - times[first]
    batch = config.batch_size * (getattr(config, "d_steps", 1) if getattr(config, "stage", "") == "gan" else 1)
    return {"steps_per_s": item["steps"] / seconds, "s_per_step": seconds / item["steps"],
            "timed_steps": item["steps"], "warmup_steps": item["warmup"],
            "warmup_s": times[first] - start, "total_s": total, "batch": batch,
            "hr_patch": getattr(config, "hr_patch", None) or getattr(config, "patch", None)}


def time_toy(item: dict, out: Path) -> dict:
    from gan_toys.train import run

    metrics = run(item["experiment"], out, {"steps": item["steps"]})
    return {"steps_per_s": item["steps"] / metrics["train_seconds"], "s_per_step": metrics["train_seconds"] / item["steps"],
            "timed_steps": item["steps"], "warmup_steps": 0, "warmup_s": None, "total_s": metrics["total_seconds"],
            "batch": None, "hr_patch": None, "note": "whole run, tracing included"}


def pipeline_rate(seconds: float, data="T91", scale=4, patch=96, batch=16) -> dict:
    """HR patches per second of common.data.train_dataset (as benchmarks.bench_pipeline measures it)."""
    from common.data import train_dataset
    from common.paths import resolve_data

    start = time.perf_counter()
    batches = iter(train_dataset(resolve_data(data), scale, hr_patch=patch, batch_size=batch))
    next(batches)
    warmup = time.perf_counter() - start
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or count == 0:
        next(batches)
        count += 1
    return {"patches_per_s": count * batch / elapsed, "batches": count, "seconds": elapsed, "warmup_s": warmup,
            "data": str(data), "scale": scale, "hr_patch": patch, "batch": batch}


def run(only=CHAPTERS, quick=False, pipeline_seconds=10.0, out=None) -> dict:
    out = out or (lambda line: print(line, flush=True))
    env = environment()
    out(format_environment(env))
    results, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="bench_training_") as tmp:
        for item in configs(quick):
            if item["chapter"] not in only:
                continue
            try:
                if item["chapter"] == "gan_toys":
                    r = time_toy(item, Path(tmp) / item["key"])
                else:
                    r = time_trainer(item, Path(tmp) / item["key"])
            except Exception as exc:
                skipped.append(f"{item['label']}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                out(f"skipped: {skipped[-1]}")
                continue
            row = {"key": item["key"], "chapter": item["chapter"], "label": item["label"], **r}
            results.append(row)
            out(f"{item['chapter']:<9} {item['label']:<72} {row['steps_per_s']:8.3f} steps/s "
                f"({row['s_per_step']:.3f} s/step over {row['timed_steps']} steps)")
    pipeline = None
    if pipeline_seconds > 0:
        data = "Set5" if quick else "T91"
        pipeline = pipeline_rate(pipeline_seconds, data, patch=64 if quick else 96)
        out(f"tf.data     {pipeline['patches_per_s']:.0f} patches/s ({pipeline['hr_patch']}x{pipeline['hr_patch']} "
            f"HR crops of {data}, x4, batch {pipeline['batch']}, {pipeline['batches']} batches in "
            f"{pipeline['seconds']:.1f} s, warm-up {pipeline['warmup_s']:.1f} s)")
    return {"script": "benchmarks.bench_training", "environment": env,
            "settings": {"quick": quick, "chapters": list(only), "pipeline_seconds": pipeline_seconds,
                         "vgg": "random weights (GAN stages)"},
            "results": results, "pipeline": pipeline, "skipped": skipped}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_training", description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=CHAPTERS, default=list(CHAPTERS))
    parser.add_argument("--quick", action="store_true", help="tiny models, Set5, 3 timed steps")
    parser.add_argument("--pipeline-seconds", type=float, default=10.0, help="0 skips the tf.data measurement")
    parser.add_argument("--json", help="write all numbers here")
    args = parser.parse_args(argv)
    payload = run(args.only, args.quick, args.pipeline_seconds)
    if args.json:
        write_result(payload, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
