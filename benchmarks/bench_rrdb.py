"""Forward-pass time of ESRGAN's RRDB generator: ours (Keras/TF) against the PyTorch RRDBNet.

    python -m benchmarks.bench_rrdb [--runs 5] [--size 128] [--blocks 23] [--jit]

Both networks have the paper's configuration (64 filters, growth 32, x4) and random weights; the
input is 1 x size x size x 3. Ours runs `model(x, training=False)` inside a tf.function; PyTorch
runs under inference_mode with channels_last tensors and torch.set_num_threads(2). Runs of the two
alternate so that both see the same background load; the median of `runs` timed runs after one
warm-up is reported, with the process CPU time per run (less sensitive to other jobs on the machine).
"""
import argparse
import datetime
import os
import platform
import statistics
import time

import common  # noqa: F401  (quiet TensorFlow import)
import numpy as np
import tensorflow as tf

from esrgan.models import rrdb_generator


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def ours(args, x):
    model = rrdb_generator(scale=4, num_blocks=args.blocks)
    forward = tf.function(lambda t: model(t, training=False), jit_compile=args.jit)
    xt = tf.constant(x)
    return lambda: forward(xt).numpy()


def pytorch(args, x):
    try:
        import torch
    except ImportError:
        return None, None
    from esrgan.torch_reference import rrdbnet

    torch.set_num_threads(2)
    net = rrdbnet(num_blocks=args.blocks, scale=4).eval().to(memory_format=torch.channels_last)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)

    def run():
        with torch.inference_mode():
            net(xt).numpy()

    return run, torch.__version__


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_rrdb", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size", type=int, default=128, help="LR input side")
    ap.add_argument("--blocks", type=int, default=23)
    ap.add_argument("--jit", action="store_true", help="XLA-compile our forward pass")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args(argv)

    print(f"date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    import keras

    x = np.random.default_rng(0).uniform(0, 1, (1, args.size, args.size, 3)).astype(np.float32)
    runners = {"ours (TF)": ours(args, x)}
    versions = f"python {platform.python_version()}, tensorflow {tf.__version__}, keras {keras.__version__}"
    if not args.no_torch:
        run, version = pytorch(args, x)
        if run is None:
            print("PyTorch not installed: only ours is timed")
        else:
            runners["PyTorch"] = run
            versions += f", torch {version} ({torch_threads()} threads, channels_last)"
    print(f"versions: {versions}")
    print(f"input 1x{args.size}x{args.size}x3, {args.blocks} RRDBs, x4, jit_compile={args.jit}, "
          f"{args.runs} runs after a warm-up")

    for run in runners.values():
        run()
    times = {name: [] for name in runners}
    for _ in range(args.runs):
        for name, run in runners.items():
            times[name].append(_timed(run))
    medians = {}
    for name, t in times.items():
        wall = statistics.median(w for w, _ in t)
        cpu = statistics.median(c for _, c in t)
        medians[name] = wall
        print(f"{name:10s} median {wall:7.3f} s   (min {min(w for w, _ in t):.3f} s; CPU time {cpu:.3f} s/run)")
    if "PyTorch" in medians:
        print(f"ratio ours / PyTorch: {medians['ours (TF)'] / medians['PyTorch']:.2f}")


def torch_threads():
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
