"""Throughput of the training input pipeline (common.data.train_dataset).

    python -m benchmarks.bench_pipeline [--data DIR] [--scale 4] [--patch 96] [--batch 16]
        [--seconds 20] [--degradation bicubic] [--no-cache] [--against PRESET [--steps 5]]

Prints the machine and library versions, the warm-up time (decoding the images into the cache,
tracing, first batch) and the steady rate of HR patches per second, compared with what an
SRResNet training step consumes on a 2-core CPU (about 18 patches/s at batch 16). With `--against
PRESET` (an esrgan.train preset, e.g. realesrnet-cpu) the pipeline takes that preset's patch size,
batch and degradation, and the preset's training step (esrgan.train's own loop, validation off) is
timed in the same run, one after the other: the ratio says how many training steps' worth of
patches the pipeline makes in the time of one step.
Other processes sharing the CPU lower the number; the load average is printed for that reason.
"""
import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import common  # noqa: F401  (quiet TensorFlow import)
import keras
import numpy as np
import tensorflow as tf

from common.data import train_dataset

SRRESNET_PATCHES_PER_S = 18.0
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "T91"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_summary() -> list[str]:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return [
        f"date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"cpu: {cpu_model()}, {os.cpu_count()} logical cores, load average {load}",
        f"python {platform.python_version()}, tensorflow {tf.__version__}, keras {keras.__version__}, "
        f"numpy {np.__version__}",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="training image folder")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--patch", type=int, default=96, help="HR patch size")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time after warm-up")
    parser.add_argument("--degradation", default="bicubic")
    parser.add_argument("--no-cache", action="store_true", help="decode files for every draw")
    parser.add_argument("--against", default=None, help="an esrgan.train preset whose training step is timed "
                        "in the same run (its patch, batch and degradation replace the flags above)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps with --against (default 5)")
    args = parser.parse_args(argv)
    step_rate = None
    if args.against:
        step_rate = training_rate(args.against, args.steps)
        config = step_rate["config"]
        args.patch, args.batch, args.degradation = config.hr_patch, config.batch_size, config.degradation

    for line in machine_summary():
        print(line)
    print(f"data: {args.data}, x{args.scale}, {args.patch}x{args.patch} HR patches, batch {args.batch}, "
          f"{args.degradation}, cache={not args.no_cache}")

    start = time.perf_counter()
    try:
        dataset = train_dataset(args.data, args.scale, hr_patch=args.patch, batch_size=args.batch,
                                degradation=args.degradation, cache=not args.no_cache)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    batches = iter(dataset)
    next(batches)
    warmup = time.perf_counter() - start
    print(f"warm-up (cache fill, tracing, first batch): {warmup:.2f} s")

    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < args.seconds:
        next(batches)
        count += 1
    rate = count * args.batch / elapsed
    print(f"steady: {rate:.0f} patches/s ({count} batches in {elapsed:.1f} s), "
          f"{rate / SRRESNET_PATCHES_PER_S:.1f}x the {SRRESNET_PATCHES_PER_S:.0f} patches/s an SRResNet "
          "step consumes")
    if step_rate:
        consumed = step_rate["batch"] / step_rate["s_per_step"]
        print(f"training step ({args.against}, same run): {step_rate['s_per_step']:.3f} s/step = {consumed:.1f} "
              f"patches/s; the pipeline makes {rate / consumed:.1f}x that")
    return 0


def training_rate(preset: str, steps: int) -> dict:
    """s/step of esrgan.train with `preset` (validation and checkpoints off), via bench_training."""
    import tempfile
    from dataclasses import replace

    from benchmarks.bench_training import time_trainer
    from esrgan.config import PRESETS

    config = replace(PRESETS[preset], validate_every=0, checkpoint_every=10**9, log_every=1)
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        result = time_trainer({"chapter": "esrgan", "config": config, "warmup": 2, "steps": steps}, Path(tmp))
    return {**result, "config": config}


if __name__ == "__main__":
    sys.exit(main())
