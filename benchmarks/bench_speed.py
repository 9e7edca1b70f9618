"""Forward speed and peak memory of every generator, ours (TF) and PyTorch of the same size.

    python -m benchmarks.bench_speed [--sizes 128 256] [--runs 3] [--no-torch] [--in-process]
        [--tiny] [--json OUT]

For each generator (the paper's SRCNN 9-5-5 on the bicubic-upscaled Y channel, SRResNet x4 with
16 blocks, the 23-block RRDB x4, and the shipped checkpoints' sizes where they differ) and each LR
input side (1 x size x size x 3; SRCNN gets the x4 bicubic-upscaled size), a fresh process builds
the model with random weights (speed does not depend on them), runs one warm-up forward pass
(tracing) and `--runs` timed ones: median wall time, output megapixels per second and the process's
peak RSS (sizes run in increasing order, so the peak after a size is that size's peak). With PyTorch
installed the same runs are done for a PyTorch RRDBNet (esrgan.torch_reference) and a PyTorch
SRResNet of the same layout (below), each in its own process (channels_last, torch's default
threads), and the ratio ours / PyTorch is printed. `--in-process` runs everything in this process
(quicker; the peak RSS is then this process's, not one model's). `--tiny` uses 2-block models.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common  # noqa: F401  (quiet TensorFlow import)
import numpy as np

from benchmarks.bench_quality import environment, format_environment, write_result

REPO = Path(__file__).resolve().parents[1]


def rss_bytes() -> int:
    """Peak RSS of this process. Linux's ru_maxrss survives fork + exec (a child started by a big
    parent reports the parent's peak), so VmHWM, which belongs to this process's own memory, comes first."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def current_rss() -> int:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return rss_bytes()


# --- generators ------------------------------------------------------------------------------------


def generators(tiny: bool = False) -> list[dict]:
    """[{key, label, arch, args, input_scale, channels, torch}] timed by this script."""
    srresnet_blocks, rrdb_blocks = (2, 2) if tiny else (16, 23)
    gens = [
        {"key": "srcnn", "label": "SRCNN 9-5-5 (Y, x4 input)", "arch": "srcnn", "args": {"padding": "reflect"},
         "input_scale": 4, "channels": 1, "torch": None},
        {"key": "srresnet", "label": f"SRResNet x4 ({srresnet_blocks} blocks, 64 filters)", "arch": "srresnet",
         "args": {"num_blocks": srresnet_blocks}, "input_scale": 1, "channels": 3, "torch": "srresnet"},
        {"key": "rrdb", "label": f"RRDB x4 ({rrdb_blocks} blocks, 64 filters, growth 32)", "arch": "rrdb_generator",
         "args": {"num_blocks": rrdb_blocks}, "input_scale": 1, "channels": 3, "torch": "rrdbnet"},
    ]
    if not tiny:  # the shipped checkpoints' own sizes, when they differ from the paper's
        for key, path in (("srresnet_shipped", REPO / "srgan" / "weights" / "srresnet_x4.json"),
                          ("rrdb_shipped", REPO / "esrgan" / "weights" / "rrdb_x4.json")):
            if not path.is_file():
                continue
            meta = json.loads(path.read_text())
            args = {k: v for k, v in (meta.get("args") or {}).items() if k != "scale"}
            paper = next(g for g in gens if g["arch"] == meta.get("architecture"))
            defaults = {"srresnet": dict(num_filters=64, num_blocks=16),
                        "rrdb_generator": dict(num_filters=64, num_blocks=23, growth=32)}[paper["arch"]]
            if all(args.get(k, v) == v for k, v in defaults.items()):
                continue
            shown = ", ".join(f"{k} {v}" for k, v in args.items() if k in ("num_blocks", "num_filters", "growth"))
            gens.append({**paper, "key": key, "label": f"{path.stem} (shipped: {shown})", "args": args})
    return gens


def build_tf(gen: dict):
    from common import registry

    return registry.build(gen["arch"], **gen["args"])


def torch_srresnet(num_filters=64, num_blocks=16, scale=4):
    """A PyTorch SRResNet with our srgan.models.srresnet layout (NCHW, for speed comparisons only)."""
    from torch import nn

    class Block(nn.Module):
        def __init__(self, f):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(f, f, 3, 1, 1), nn.BatchNorm2d(f), nn.PReLU(f),
                                      nn.Conv2d(f, f, 3, 1, 1), nn.BatchNorm2d(f))

        def forward(self, x):
            return x + self.body(x)

    class SRResNet(nn.Module):
        def __init__(self):
            super().__init__()
            f = num_filters
            self.head = nn.Sequential(nn.Conv2d(3, f, 9, 1, 4), nn.PReLU(f))
            self.blocks = nn.Sequential(*[Block(f) for _ in range(num_blocks)])
            self.body = nn.Sequential(nn.Conv2d(f, f, 3, 1, 1), nn.BatchNorm2d(f))
            ups = []
            for _ in range(int(np.log2(scale))):
                ups += [nn.Conv2d(f, 4 * f, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(f)]
            self.up = nn.Sequential(*ups)
            self.tail = nn.Conv2d(f, 3, 9, 1, 4)

        def forward(self, x):
            head = self.head(x)
            return self.tail(self.up(head + self.body(self.blocks(head))))

    return SRResNet()


def build_torch(gen: dict):
    args = gen["args"]
    if gen["torch"] == "rrdbnet":
        from esrgan.torch_reference import rrdbnet

        return rrdbnet(num_filters=args.get("num_filters", 64), num_blocks=args.get("num_blocks", 23),
                       growth=args.get("growth", 32), scale=args.get("scale", 4))
    return torch_srresnet(args.get("num_filters", 64), args.get("num_blocks", 16), args.get("scale", 4))


# --- timing ----------------------------------------------------------------------------------------


def _times(run, runs: int, warmup: float) -> dict:
    wall, cpu = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return {"warmup_s": warmup, "wall_s": statistics.median(wall), "min_s": min(wall),
            "cpu_s": statistics.median(cpu), "runs": runs}


def measure(gen: dict, framework: str, sizes, runs: int) -> dict:
    """Time one generator at each LR size in this process; {"rows": [...], "parameters"}."""
    rng = np.random.default_rng(0)
    baseline = current_rss()
    rows = []
    if framework == "tf":
        import tensorflow as tf

        model = build_tf(gen)
        params = model.count_params()
        forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    else:
        import torch

        net = build_torch(gen).eval().to(memory_format=torch.channels_last)
        params = sum(p.numel() for p in net.parameters())
    for size in sorted(sizes):
        side = size * gen["input_scale"]
        x = rng.random((1, side, side, gen["channels"]), dtype=np.float32)
        if framework == "tf":
            xt = tf.constant(x)

            def run():
                return forward(xt).numpy()
        else:
            xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)

            def run():
                with torch.inference_mode():
                    return net(xt).numpy()
        start = time.perf_counter()
        out = run()  # warm-up: tracing, memory allocation
        warmup = time.perf_counter() - start
        out_pixels = int(np.prod(out.shape[1:3] if framework == "tf" else out.shape[2:4]))
        t = _times(run, runs, warmup)
        rows.append({"size": size, "input": [1, side, side, gen["channels"]], "output_pixels": out_pixels,
                     **t, "mpix_per_s": out_pixels / 1e6 / t["wall_s"], "peak_rss_bytes": rss_bytes()})
        del xt
    return {"parameters": int(params), "baseline_rss_bytes": baseline, "rows": rows,
            "threads": _threads(framework)}


def _threads(framework: str):
    if framework == "torch":
        import torch

        return torch.get_num_threads()
    import tensorflow as tf

    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


def measure_in_child(gen: dict, framework: str, sizes, runs: int) -> dict:
    spec = json.dumps({"gen": gen, "framework": framework, "sizes": list(sizes), "runs": runs})
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_speed", "--child", spec], cwd=REPO,
                          capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{gen['label']} ({framework}) failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(lines[-1])


def row_line(name: str, row: dict) -> str:
    side, channels = row["input"][1], row["input"][3]
    shape = f"{side}x{side}x{channels}"
    return (f"{name:<48} {shape:>12} {row['wall_s']:9.3f} s {row['mpix_per_s']:9.3f} "
            f"MP/s {row['peak_rss_bytes'] / 1e9:7.2f} GB   (min {row['min_s']:.3f} s, CPU {row['cpu_s']:.2f} s, "
            f"warm-up {row['warmup_s']:.2f} s)")


def run(sizes=(128, 256), runs=3, with_torch=True, in_process=False, tiny=False, out=None) -> dict:
    out = out or (lambda line: print(line, flush=True))
    env = environment()
    out(format_environment(env))
    have_torch = env["torch"] is not None and with_torch
    if with_torch and env["torch"] is None:
        out("PyTorch not installed: only our models are timed")
    out(f"LR sizes {' '.join(f'{s}x{s}' for s in sizes)}, batch 1, {runs} timed runs after a warm-up, "
        f"{'in this process' if in_process else 'one process per model and framework'}")
    out(f"{'generator':<48} {'input':>12} {'median':>11} {'output':>14} {'peak RSS':>10}")
    results, skipped = [], []
    for gen in generators(tiny):
        frameworks = ["tf"] + (["torch"] if have_torch and gen["torch"] else [])
        entry = {"key": gen["key"], "label": gen["label"], "args": gen["args"]}
        for fw in frameworks:
            try:
                m = measure(gen, fw, sizes, runs) if in_process else measure_in_child(gen, fw, sizes, runs)
            except Exception as exc:
                skipped.append(f"{gen['label']} ({fw}): {str(exc).splitlines()[0]}")
                out(f"skipped: {skipped[-1]}")
                continue
            entry[fw] = m
            out(f"{gen['label']} [{'ours, TF' if fw == 'tf' else 'PyTorch'}]: {m['parameters']:,} parameters, "
                f"RSS after imports {m['baseline_rss_bytes'] / 1e9:.2f} GB, threads {m['threads']}")
            for row in m["rows"]:
                out(row_line(f"{gen['label']} [{'ours, TF' if fw == 'tf' else 'PyTorch'}]", row))
        if "tf" in entry and "torch" in entry:
            entry["ratio"] = {str(a["size"]): a["wall_s"] / b["wall_s"]
                              for a, b in zip(entry["tf"]["rows"], entry["torch"]["rows"])}
            out(f"{gen['label']}: ratio ours / PyTorch (median wall) "
                + ", ".join(f"{s}x{s}: {r:.2f}" for s, r in entry["ratio"].items()))
        results.append(entry)
    return {"script": "benchmarks.bench_speed", "environment": env,
            "settings": {"sizes": list(sizes), "runs": runs, "in_process": in_process, "tiny": tiny,
                         "torch": have_torch, "batch": 1, "weights": "random (speed does not depend on them)"},
            "results": results, "skipped": skipped}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_speed", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="LR input sides")
    parser.add_argument("--runs", type=int, default=3, help="timed runs after the warm-up (median reported)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--in-process", action="store_true", help="no child processes (RSS not per model)")
    parser.add_argument("--tiny", action="store_true", help="2-block SRResNet/RRDB (tests)")
    parser.add_argument("--json", help="write all numbers here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(measure(spec["gen"], spec["framework"], spec["sizes"], spec["runs"])))
        return 0
    payload = run(args.sizes, args.runs, not args.no_torch, args.in_process, args.tiny)
    if args.json:
        write_result(payload, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
