"""A/B of OpenVINO CPU options on one generator against PyTorch, interleaved and repeated.

    python -m benchmarks.bench_openvino_options [--gen rrdb] [--size 128] [--runs 3] [--rounds 3]
        [--variants dynamic static bf16 ...] [--json OUT]
    python -m benchmarks.bench_openvino_options --psnr [--data ../shared/data/Set5] [--json OUT]

For a loaded machine, where absolute times drift: the generator (random weights) is converted once,
then every round runs each variant and PyTorch (channels_last, torch's default threads) once, each
in a fresh process, in a rotated order. Each process compiles, runs one warm-up pass, then `--runs`
timed passes (median). Printed per variant: the median over rounds of its time, of its ratio to
the PyTorch run of the same round, the compile and first-pass times, and the load average.
Variants (OpenVINO, each through common.backends.OpenVINORunner with its settings plus the
variant's): dynamic = as shipped, the dynamic-shape model; static = compiled for the input's shape
(static_shapes=True: compiled at the first pass, so its compile time is in "first pass");
bf16 / static_bf16 = precision bfloat16 (INFERENCE_PRECISION_HINT bf16, CPUs with AVX512-BF16/AMX);
throughput = PERFORMANCE_HINT THROUGHPUT; threads1 = INFERENCE_NUM_THREADS 1; *_t1 = the others on
one thread (one thread's CPU time barely moves on a loaded machine, so they compare kernels);
nopin = ENABLE_CPU_PINNING off; tbb_static = TBB_PARTITIONER STATIC (OpenVINO's own default; the
shipped setting is AUTO), static_tbb_static = both static. CPU time is printed too.

`--psnr`: what bfloat16 costs in quality: the PSNR (evaluation protocol) of every shipped checkpoint
on TensorFlow, on OpenVINO in float32 (as shipped) and on OpenVINO in bfloat16, on Set5.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {
    "dynamic": ({}, False), "static": ({}, True),
    "bf16": ({"INFERENCE_PRECISION_HINT": "bf16"}, False), "static_bf16": ({"INFERENCE_PRECISION_HINT": "bf16"}, True),
    "throughput": ({"PERFORMANCE_HINT": "THROUGHPUT"}, False), "threads1": ({"INFERENCE_NUM_THREADS": 1}, False),
    "nopin": ({"ENABLE_CPU_PINNING": False}, False), "static_nopin": ({"ENABLE_CPU_PINNING": False}, True),
    "tbb_static": ({"TBB_PARTITIONER": "STATIC"}, False),
    "static_tbb_static": ({"TBB_PARTITIONER": "STATIC"}, True),
    "dynamic_t1": ({"INFERENCE_NUM_THREADS": 1}, False), "static_t1": ({"INFERENCE_NUM_THREADS": 1}, True),
    "bf16_t1": ({"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "bf16"}, False),
}


def time_openvino(xml: str, variant: str, size: int, channels: int, runs: int) -> dict:
    """One variant through common.backends.OpenVINORunner (its settings, with the variant's on top)."""
    from common.backends import OpenVINORunner

    extra, static = VARIANTS[variant]
    extra = dict(extra)
    precision = {"f32": "float32", "bf16": "bfloat16"}[extra.pop("INFERENCE_PRECISION_HINT", "f32")]
    start = time.perf_counter()
    runner = OpenVINORunner(Path(xml), extra, precision, static_shapes=static)  # static: compiled on first call
    compile_s = time.perf_counter() - start
    x = np.random.default_rng(0).random((1, size, size, channels), dtype=np.float32)
    return {"compile_s": compile_s, "config": {k: str(v) for k, v in runner.config.items()}, **_timed(lambda: runner(x), runs)}


def time_torch(gen: dict, size: int, runs: int) -> dict:
    import torch

    from benchmarks.bench_speed import build_torch

    net = build_torch(gen).eval().to(memory_format=torch.channels_last)
    x = np.random.default_rng(0).random((1, size, size, 3), dtype=np.float32)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)

    def run():
        with torch.inference_mode():
            return net(xt).numpy()

    return {"compile_s": 0.0, "threads": torch.get_num_threads(), **_timed(run, runs)}


def _timed(run, runs: int) -> dict:
    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    walls, cpus = [], []
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return {"first_s": first, "walls": walls, "wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus)}


def psnr_table(data, out=print) -> dict:
    """{checkpoint: {"tensorflow"|"openvino"|"openvino_bf16": Set5 PSNR}} of every shipped checkpoint."""
    from common.backends import OpenVINORunner, Prepared
    from common.evaluate import evaluate_model
    from common.upscaler import Upscaler

    table = {}
    for path in sorted(REPO.glob("*/weights/*.h5")):
        if path.name.endswith(".weights.h5"):
            continue
        spec = str(path.relative_to(REPO))
        f32 = Upscaler(spec, backend="openvino")
        p = f32.prepared
        bf16 = Upscaler(Prepared(OpenVINORunner(p.runner.model, precision="bfloat16"), p.info, p.meta, "openvino",
                                 "bfloat16"))
        row = {name: evaluate_model(up, data, f32.scale, name=name)["psnr"]
               for name, up in (("tensorflow", Upscaler(spec, backend="tensorflow")), ("openvino", f32),
                                ("openvino_bf16", bf16))}
        table[spec] = row
        out(f"{spec:<32} x{f32.scale}  PSNR TensorFlow {row['tensorflow']:.4f}, OpenVINO f32 {row['openvino']:.4f}, "
            f"bf16 {row['openvino_bf16']:.4f} dB (bf16 - f32 {row['openvino_bf16'] - row['openvino']:+.4f})")
    return table


def _child(args: list[str], settings) -> dict:
    """One task in a fresh process, with this run's generator, size and number of runs."""
    same = ["--gen", settings.gen, "--size", str(settings.size), "--runs", str(settings.runs)]
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_openvino_options", *same, "--child", *args],
                          cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr.strip().splitlines() or ["?"])[-1])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_openvino_options",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--gen", default="rrdb", help="bench_speed generator key (rrdb, srresnet, rrdb_shipped)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=["dynamic", "static", "bf16", "static_bf16"],
                        choices=sorted(VARIANTS))
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--xml", help="an OpenVINO IR of the generator already converted (skips converting)")
    parser.add_argument("--psnr", action="store_true", help="Set5 PSNR of the shipped models, f32 vs bf16")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "Set5"), help="for --psnr")
    parser.add_argument("--json")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from benchmarks import bench_speed

    gen = next(g for g in bench_speed.generators() if g["key"] == args.gen)
    if args.child:
        kind, *rest = args.child
        if kind == "convert":
            print(json.dumps(bench_speed.convert(gen, "openvino", rest[0])))
        elif kind == "torch":
            print(json.dumps(time_torch(gen, args.size, args.runs)))
        else:
            print(json.dumps(time_openvino(rest[0], kind, args.size, gen["channels"], args.runs)))
        return 0
    from benchmarks.bench_quality import environment, format_environment, write_result

    print(format_environment(environment()), flush=True)
    if args.psnr:
        print(f"PSNR on {args.data} (Y, BT.601, scale border cropped, 8-bit), each shipped checkpoint", flush=True)
        table = psnr_table(args.data, lambda line: print(line, flush=True))
        if args.json:
            write_result({"script": "benchmarks.bench_openvino_options", "environment": environment(),
                          "settings": {"psnr": True, "data": args.data}, "psnr": table}, args.json)
        return 0
    print(f"{gen['label']}, {args.size}x{args.size} LR, {args.runs} timed runs after a warm-up per process, "
          f"{args.rounds} rounds, order rotated per round", flush=True)
    results = {v: [] for v in args.variants + ([] if args.no_torch else ["torch"])}
    loads = []
    with tempfile.TemporaryDirectory(prefix="ov_options_") as folder:
        xml = args.xml or _child(["convert", folder], args)["path"]
        names = list(results)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                loads.append(os.getloadavg()[0])
                m = _child(["torch"] if name == "torch" else [name, xml], args)
                m["round"] = r
                results[name].append(m)
                print(f"round {r} {name:<12} {m['wall_s']:7.3f} s, CPU {m['cpu_s']:7.3f} s (runs {', '.join(f'{w:.2f}' for w in m['walls'])}; "
                      f"compile {m['compile_s']:.2f} s, first pass {m['first_s']:.2f} s; load {loads[-1]:.2f})", flush=True)
    summary = {}
    torch_by_round = {m["round"]: m["wall_s"] for m in results.get("torch", [])}
    for name, ms in results.items():
        ratios = [m["wall_s"] / torch_by_round[m["round"]] for m in ms if m["round"] in torch_by_round]
        summary[name] = {"median_s": statistics.median(m["wall_s"] for m in ms),
                         "median_cpu_s": statistics.median(m["cpu_s"] for m in ms),
                         "median_ratio_to_torch": statistics.median(ratios) if ratios and name != "torch" else None,
                         "ratios": ratios, "compile_s": statistics.median(m["compile_s"] for m in ms),
                         "first_s": statistics.median(m["first_s"] for m in ms)}
        s = summary[name]
        ratio = f", / PyTorch same round: median {s['median_ratio_to_torch']:.2f} ({', '.join(f'{x:.2f}' for x in ratios)})" \
            if s["median_ratio_to_torch"] else ""
        print(f"{name:<12} median {s['median_s']:.3f} s (CPU {s['median_cpu_s']:.3f} s){ratio}; compile {s['compile_s']:.2f} s, "
              f"first pass {s['first_s']:.2f} s", flush=True)
    print(f"load average (1 min) during the runs: median {statistics.median(loads):.2f}, "
          f"range {min(loads):.2f}-{max(loads):.2f}")
    if args.json:
        write_result({"script": "benchmarks.bench_openvino_options", "environment": environment(),
                      "settings": vars(args), "results": results, "summary": summary, "loads": loads}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
