"""Speed of the paper's SRResNet (B = 16 residual blocks, 64 filters, x4).

    python -m benchmarks.bench_srresnet [--repeats 5]

Targets from the thesis: forward pass on a 128x128 LR input <= 0.55 s; a batch-16 training step
(16 x 24x24 LR -> 96x96 HR, MSE, Adam) <= 0.88 s. Prints the median of `--repeats` timed runs after
one warm-up run (graph tracing excluded), plus the machine and library versions.
"""
import argparse
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone

import numpy as np

import common  # noqa: F401  (quiet TensorFlow import)
import keras
import tensorflow as tf

from common.runtime import setup_devices
from srgan.models import srresnet


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: tracing and memory allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine_info(device: str) -> str:
    return (
        f"date {datetime.now(timezone.utc).isoformat(timespec='seconds')} | {platform.node()} | "
        f"{platform.processor() or platform.machine()} | {os.cpu_count()} CPU(s) | device {device} | "
        f"python {platform.python_version()} | tensorflow {tf.__version__} | keras {keras.__version__} | "
        f"numpy {np.__version__} | load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_srresnet",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--num-blocks", type=int, default=16)
    args = parser.parse_args(argv)

    device = setup_devices()
    print(machine_info(device))
    model = srresnet(scale=4, num_blocks=args.num_blocks)
    print(f"SRResNet x4, B={args.num_blocks}: {model.count_params():,} parameters")
    rng = np.random.default_rng(0)

    @tf.function(reduce_retracing=True)
    def forward(x):
        return model(x, training=False)

    def forward_run(x):
        return lambda: forward(x).numpy()

    results = []
    for shape in ((1, 128, 128, 3), (16, 24, 24, 3)):
        x = tf.constant(rng.random(shape, dtype=np.float32))
        target = 0.55 if shape[0] == 1 else None
        results.append((f"forward {shape[0]} x {shape[1]}x{shape[2]} LR", timed(forward_run(x), args.repeats), target))

    optimizer = keras.optimizers.Adam(1e-4)
    lr = tf.constant(rng.random((16, 24, 24, 3), dtype=np.float32))
    hr = tf.constant(rng.random((16, 96, 96, 3), dtype=np.float32) * 2 - 1)

    @tf.function
    def train_step(lr, hr):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(hr - model(lr, training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    results.append(("train step 16 x 24x24 -> 96x96 (MSE, Adam)",
                    timed(lambda: train_step(lr, hr).numpy(), args.repeats), 0.88))

    for name, seconds, target in results:
        verdict = "" if target is None else f"  (target <= {target:.2f} s: {'ok' if seconds <= target else 'SLOWER'})"
        print(f"{name:<45} {seconds:7.3f} s{verdict}")
    print("note: medians on this machine; other processes sharing the CPU inflate them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
