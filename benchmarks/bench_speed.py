"""Forward speed and peak memory of every generator on every installed backend, and PyTorch's.

    python -m benchmarks.bench_speed [--sizes 128 256] [--runs 3] [--backends tensorflow openvino ...]
        [--no-torch] [--in-process] [--tiny] [--threads N] [--only KEY ...] [--json OUT]

For each generator (the paper's SRCNN 9-5-5 on the bicubic-upscaled Y channel, SRResNet x4 with
16 blocks, the 23-block RRDB x4, Real-ESRGAN's SRVGGNetCompact x4 with 16 convs of 64 filters, and
the shipped checkpoints' sizes where they differ) and each LR input side (1 x size x size x 3;
SRCNN gets the x4 bicubic-upscaled size), a fresh process per
backend runs the model with random weights (speed does not depend on them): TensorFlow (the Keras
model in a tf.function), and OpenVINO / ONNX Runtime when installed, on the model converted by
common.backends as an upscale would (the conversion runs in its own process first, so the timed
process holds no TensorFlow, as a cached upscale). One warm-up pass, then `--runs` timed ones:
median wall time, output megapixels per second and the process's peak RSS (VmHWM; sizes run in
increasing order, so the peak after a size is that size's peak). With PyTorch installed the same
runs are done for a PyTorch RRDBNet and SRVGGNetCompact (esrgan.torch_reference) and a PyTorch
SRResNet of the same layout (channels_last, torch's default threads), and ours / PyTorch is printed
for every backend, the default one (common.backends: auto) first; the compact model's time is also
given as a fraction of the shipped RRDB's (esrgan/weights/rrdb_x4) on the default backend, in wall
and in CPU time. On CPUs with AVX512-BF16/AMX, OpenVINO also runs the same IR in bfloat16 ("ours,
OpenVINO bf16": OpenVINORunner(precision="bfloat16"), not the default; `--backends` leaves it out
when not named). The FLOPs of each model's convolutions give its fp32 floor on this CPU: FLOPs /
peak, with peak = cores x FLOP/cycle (32 with AVX2+FMA: two 8-wide FMA units; 64 with AVX-512) x
the clock /proc/cpuinfo reports, cores being --threads or the CPUs this process may run on.
`--threads N` sets every framework's thread count (TensorFlow intra/inter-op, OpenVINO
INFERENCE_NUM_THREADS, ONNX Runtime intra-op, torch.set_num_threads), e.g. 1 under `taskset -c 0`.
`--in-process` runs everything in this process (quicker; the peak RSS is then this process's).
`--tiny` uses 2-block models.
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

import tempfile

import common  # noqa: F401  (quiet TensorFlow import, when TensorFlow is used)
import numpy as np

REPO = Path(__file__).resolve().parents[1]
# our backends ("openvino_bf16": OpenVINO in bfloat16, the opt-in, on CPUs with AVX512-BF16/AMX); "torch" is the peer
ENGINES = ("tensorflow", "openvino", "onnxruntime", "openvino_bf16")
SHOWN = {"tensorflow": "ours, TF", "openvino": "ours, OpenVINO", "onnxruntime": "ours, ONNX Runtime",
         "openvino_bf16": "ours, OpenVINO bf16",
         "torch": "PyTorch"}


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
    srresnet_blocks, rrdb_blocks, compact_convs = (2, 2, 2) if tiny else (16, 23, 16)
    gens = [
        {"key": "srcnn", "label": "SRCNN 9-5-5 (Y, x4 input)", "arch": "srcnn", "args": {"padding": "reflect"},
         "input_scale": 4, "channels": 1, "torch": None},
        {"key": "srresnet", "label": f"SRResNet x4 ({srresnet_blocks} blocks, 64 filters)", "arch": "srresnet",
         "args": {"num_blocks": srresnet_blocks}, "input_scale": 1, "channels": 3, "torch": "srresnet"},
        {"key": "rrdb", "label": f"RRDB x4 ({rrdb_blocks} blocks, 64 filters, growth 32)", "arch": "rrdb_generator",
         "args": {"num_blocks": rrdb_blocks}, "input_scale": 1, "channels": 3, "torch": "rrdbnet"},
        {"key": "compact", "label": f"SRVGGNetCompact x4 ({compact_convs} convs, 64 filters)",
         "arch": "srvgg_compact", "args": {"num_convs": compact_convs}, "input_scale": 1, "channels": 3,
         "torch": "srvgg_compact"},
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
    if gen["torch"] == "srvgg_compact":
        from esrgan.torch_reference import srvgg_compact

        return srvgg_compact(num_filters=args.get("num_filters", 64), num_convs=args.get("num_convs", 16),
                             scale=args.get("scale", 4))
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


def conv_flops(model, size: int) -> float:
    """FLOPs (2 per multiply-add) of the model's convolutions on one size x size input (each layer's
    output side is linear in the input side: measured at two small sides, extrapolated)."""
    import keras

    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    probe = keras.Model(model.inputs, [layer.output for layer in convs])
    channels = int(model.inputs[0].shape[-1])
    sides = []
    for n in (16, 32):
        outs = probe(np.zeros((1, n, n, channels), np.float32), training=False)
        sides.append([int(o.shape[1]) for o in (outs if isinstance(outs, (list, tuple)) else [outs])])
    total = 0.0
    for layer, a, b in zip(convs, *sides):
        kh, kw, cin, cout = layer.kernel.shape
        side = a + (b - a) * (size - 16) / 16
        total += 2.0 * kh * kw * cin * cout * side**2
    return total


def convert(gen: dict, backend: str, folder: str) -> dict:
    """Build the generator (random weights) and write it converted for `backend` into `folder`."""
    from common import backends

    model = build_tf(gen)
    backend = "openvino" if backend == "openvino_bf16" else backend  # the same IR; bf16 is a compile option
    _, name, _ = backends.CONVERTERS[backend]
    start = time.perf_counter()
    backends.CONVERTERS[backend][0](model, Path(folder) / name)
    return {"path": str(Path(folder) / name), "convert_s": time.perf_counter() - start,
            "flops_per_lr_pixel": conv_flops(model, 512) / 512**2 * gen["input_scale"] ** 2}


class _OnnxRunner:
    """ONNX Runtime on the CPU with `threads` intra-op threads (common.backends' runner takes its default)."""

    def __init__(self, path, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x):
        return self.session.run(None, {self.input: x})[0]


def measure(gen: dict, framework: str, sizes, runs: int, model_path=None, threads: int | None = None) -> dict:
    """Time one generator at each LR size in this process; {"rows": [...], "parameters"}. `threads`:
    the framework's thread count (None: its default)."""
    rng = np.random.default_rng(0)
    baseline = current_rss()
    rows = []
    params = runner = None
    ov_config = {"INFERENCE_NUM_THREADS": threads} if threads else None
    if framework == "tf":
        import tensorflow as tf

        if threads:  # before TensorFlow starts its thread pools
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        model = build_tf(gen)
        params = model.count_params()
        forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    elif framework == "openvino_bf16":
        from common import backends

        runner = backends.OpenVINORunner(Path(model_path), ov_config, precision="bfloat16")
    elif framework == "openvino":
        from common import backends

        runner = backends.OpenVINORunner(Path(model_path), ov_config)
    elif framework == "onnxruntime":
        from common import backends

        runner = _OnnxRunner(model_path, threads) if threads else backends.OnnxRuntimeRunner(Path(model_path))
    else:
        import torch

        if threads:
            torch.set_num_threads(threads)
            try:
                torch.set_num_interop_threads(threads)
            except RuntimeError:  # already set in this process (--in-process)
                pass
        net = build_torch(gen).eval().to(memory_format=torch.channels_last)
        params = sum(p.numel() for p in net.parameters())
    for size in sorted(sizes):
        side = size * gen["input_scale"]
        x = rng.random((1, side, side, gen["channels"]), dtype=np.float32)
        if framework == "tf":
            xt = tf.constant(x)

            def run():
                return forward(xt).numpy()
        elif framework == "torch":
            xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)

            def run():
                with torch.inference_mode():
                    return net(xt).numpy()
        else:
            xt = x

            def run():
                return runner(xt)
        start = time.perf_counter()
        out = run()  # warm-up: tracing / compiling for this shape, memory allocation
        warmup = time.perf_counter() - start
        out_pixels = int(np.prod(out.shape[2:4] if framework == "torch" else out.shape[1:3]))
        t = _times(run, runs, warmup)
        rows.append({"size": size, "input": [1, side, side, gen["channels"]], "output_pixels": out_pixels,
                     **t, "mpix_per_s": out_pixels / 1e6 / t["wall_s"], "peak_rss_bytes": rss_bytes()})
        del xt
    return {"parameters": params, "baseline_rss_bytes": baseline, "rows": rows,
            "threads": _threads(framework, runner if framework.startswith("openvino") else None, threads),
            "tensorflow_loaded": "tensorflow" in sys.modules}


def _threads(framework: str, runner=None, threads=None):
    if framework == "torch":
        import torch

        return torch.get_num_threads()
    if framework.startswith("openvino"):  # the settings the runner compiled with, and how it treats shapes
        return {**{k: str(v) for k, v in runner.config.items()},
                "shapes": "static (compiled per input shape)" if runner.static_shapes else "dynamic"}
    if framework == "onnxruntime":
        return f"intra_op {threads}" if threads else "onnxruntime default (one per physical core)"
    import tensorflow as tf

    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


def _child(payload: dict) -> dict:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_speed", "--child", json.dumps(payload)],
                          cwd=REPO, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError((proc.stderr.strip().splitlines() or ["?"])[-1])
    return json.loads(lines[-1])


def measure_in_child(gen: dict, framework: str, sizes, runs: int, in_process: bool = False,
                     threads: int | None = None) -> dict:
    """measure() in a fresh process (converted models: converted first, in another process)."""
    with tempfile.TemporaryDirectory(prefix="bench_speed_") as folder:
        converted = {}
        if framework in ("openvino", "onnxruntime", "openvino_bf16"):
            task = {"task": "convert", "gen": gen, "framework": framework, "folder": folder}
            converted = convert(gen, framework, folder) if in_process else _child(task)
        task = {"task": "measure", "gen": gen, "framework": framework, "sizes": list(sizes), "runs": runs,
                "model_path": converted.get("path"), "threads": threads}
        if in_process:
            result = measure(gen, framework, sizes, runs, converted.get("path"), threads)
        else:
            result = _child(task)
    result.update({k: v for k, v in converted.items() if k != "path"})
    return result


def row_line(name: str, row: dict) -> str:
    side, channels = row["input"][1], row["input"][3]
    shape = f"{side}x{side}x{channels}"
    return (f"{name:<64} {shape:>12} {row['wall_s']:9.3f} s {row['mpix_per_s']:9.3f} "
            f"MP/s {row['peak_rss_bytes'] / 1e9:7.2f} GB   (min {row['min_s']:.3f} s, CPU {row['cpu_s']:.2f} s, "
            f"warm-up {row['warmup_s']:.2f} s)")


def fp32_peak(threads: int | None = None) -> tuple[float, str]:
    """(FLOP/s, how it was worked out): cores x fp32 FLOP per cycle x clock; cores: `threads`, else
    the CPUs this process may run on (taskset).

    FLOP per cycle: two FMA units x vector lanes x 2; AVX2+FMA: 2 x 8 x 2 = 32. AVX-512: 64 where
    the units are 512 bits wide (Intel server cores, AMD Zen 5 = family 26), 32 on AMD Zen 4
    (family 25), which runs 512-bit instructions as two 256-bit halves.
    """
    from common.precision import cpu_flags

    flags = cpu_flags()
    info = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    amd = info.get("vendor_id") == "AuthenticAMD"
    family = int(info.get("cpu family") or 0)
    if "avx512f" in flags and not (amd and family < 26):
        per_cycle, why = 64, "AVX-512: 2 FMA units x 16 fp32 lanes x 2"
    elif {"avx2", "fma"} <= flags:
        per_cycle, why = 32, "2 FMA units x 8 fp32 lanes x 2" + (" (AVX-512 double-pumped on AMD family "
                                                                 f"{family})" if "avx512f" in flags else "")
    else:
        per_cycle, why = 16, "no FMA"
    try:
        mhz = float(info.get("cpu MHz") or 2450.0)
    except ValueError:
        mhz = 2450.0
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    cores = min(threads, usable) if threads else usable
    peak = cores * per_cycle * mhz * 1e6
    how = (f"{cores} cores x {per_cycle} FLOP/cycle ({why}) x {mhz / 1000:.2f} GHz (/proc/cpuinfo) "
           f"= {peak / 1e9:.0f} GFLOP/s")
    return peak, how


def installed_engines(wanted=None) -> list[str]:
    from common import backends

    def available(engine):
        if engine == "openvino_bf16":
            return backends.installed("openvino") and backends.native_bfloat16_cpu()
        return backends.installed(engine)

    return [e for e in (wanted or ENGINES) if available(e)]


def run(sizes=(128, 256), runs=3, with_torch=True, in_process=False, tiny=False, out=None, engines=None,
        only=None, threads=None) -> dict:
    from benchmarks.bench_quality import environment, format_environment
    from common import backends

    out = out or (lambda line: print(line, flush=True))
    env = environment()
    engines = installed_engines(engines)
    default = backends.choose_backend("auto")[0]
    env["backends"] = {e: backends.version(e.removesuffix("_bf16")) for e in engines}
    out(format_environment(env))
    out("backends: " + ", ".join(f"{e} {v}" for e, v in env["backends"].items()) + f"; default (auto): {default}")
    peak, how = fp32_peak(threads)
    out(f"assumed fp32 peak: {how}")
    peak_avx2 = peak * 32 / int(how.split(" x ")[1].split()[0])  # the same cores and clock at 32 FLOP/cycle
    if peak_avx2 != peak:
        out(f"also shown: the floor at 32 FLOP/cycle (AVX2 width, {peak_avx2 / 1e9:.0f} GFLOP/s)")
    have_torch = env["torch"] is not None and with_torch
    if with_torch and env["torch"] is None:
        out("PyTorch not installed: only our models are timed")
    out(f"LR sizes {' '.join(f'{s}x{s}' for s in sizes)}, batch 1, {runs} timed runs after a warm-up, "
        f"{'in this process' if in_process else 'one process per model and framework'}, "
        f"{f'{threads} thread(s) in every framework' if threads else 'default threads'}, "
        f"CPUs allowed: {_allowed_cpus()}")
    out(f"{'generator':<64} {'input':>12} {'median':>11} {'output':>14} {'peak RSS':>10}")
    results, skipped = [], []
    for gen in generators(tiny):
        if only and gen["key"] not in only:
            continue
        frameworks = ["tf" if e == "tensorflow" else e for e in engines] + (["torch"] if have_torch and gen["torch"] else [])
        entry = {"key": gen["key"], "label": gen["label"], "args": gen["args"]}
        for fw in frameworks:
            name = "tensorflow" if fw == "tf" else fw
            try:
                m = measure_in_child(gen, fw, sizes, runs, in_process, threads)
            except Exception as exc:
                skipped.append(f"{gen['label']} ({name}): {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
                out(f"skipped: {skipped[-1]}")
                continue
            entry[fw] = m
            extra = f", converted in {m['convert_s']:.1f} s" if "convert_s" in m else ""
            params = f"{m['parameters']:,} parameters, " if m.get("parameters") else ""
            out(f"{gen['label']} [{SHOWN[name]}]: {params}RSS after imports {m['baseline_rss_bytes'] / 1e9:.2f} GB, "
                f"threads {m['threads']}{extra}" + (", TensorFlow not loaded" if extra and not m.get("tensorflow_loaded", True) else ""))
            for row in m["rows"]:
                out(row_line(f"{gen['label']} [{SHOWN[name]}]", row))
            if "flops_per_lr_pixel" in m:
                entry["flops_per_lr_pixel"] = m["flops_per_lr_pixel"]
        if "torch" in entry:
            torch_rows = {r["size"]: r["wall_s"] for r in entry["torch"]["rows"]}
            ratios = {}
            for fw in ("tf",) + tuple(e for e in ENGINES if e != "tensorflow"):
                if fw in entry:
                    ratios[fw] = {str(r["size"]): r["wall_s"] / torch_rows[r["size"]] for r in entry[fw]["rows"]}
            if "tf" in ratios:
                entry["ratio"] = ratios["tf"]  # TensorFlow / PyTorch (the report's column)
            entry["ratios"] = ratios
            key = "tf" if default == "tensorflow" else default
            if key in ratios:
                entry["ratio_default"] = ratios[key]
            for fw, r in sorted(ratios.items(), key=lambda kv: kv[0] != key):
                out(f"{gen['label']}: [{SHOWN['tensorflow' if fw == 'tf' else fw]}"
                    f"{', default' if fw == key else ''}] / PyTorch (median wall) "
                    + ", ".join(f"{s}x{s}: {v:.2f}" for s, v in r.items()))
        if "flops_per_lr_pixel" in entry:
            key = "tf" if default == "tensorflow" else default
            floors = {}
            for row in entry.get(key, {}).get("rows", []):
                flops = entry["flops_per_lr_pixel"] * row["size"] ** 2
                floors[str(row["size"])] = {"gflop": flops / 1e9, "floor_s": flops / peak,
                                            "over_floor": row["wall_s"] / (flops / peak),
                                            "over_floor_32_flop_per_cycle": row["wall_s"] / (flops / peak_avx2)}
            entry["fp32_floor"] = floors
            if floors:
                out(f"{gen['label']}: fp32 floor ({default}) "
                    + ", ".join(f"{s}x{s}: {f['gflop']:.0f} GFLOP -> {f['floor_s']:.2f} s, measured {f['over_floor']:.2f}x"
                                + (f" ({f['over_floor_32_flop_per_cycle']:.2f}x at 32 FLOP/cycle)" if peak_avx2 != peak else "")
                                for s, f in floors.items()))
        results.append(entry)
    compact = compact_ratios(results, default)
    for line in compact.pop("lines"):
        out(line)
    return {"script": "benchmarks.bench_speed", "environment": env,
            "settings": {"sizes": list(sizes), "runs": runs, "in_process": in_process, "tiny": tiny,
                         "torch": have_torch, "batch": 1, "backends": engines, "default_backend": default,
                         "fp32_peak_flops": peak, "fp32_peak_how": how, "threads": threads,
                         "cpus_allowed": _allowed_cpus(),
                         "weights": "random (speed does not depend on them)"},
            "results": results, "skipped": skipped, "compact": compact}


def _allowed_cpus() -> str:
    try:
        return ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return "?"


# issue 32's goals for the compact generator on the default backend, per LR input
COMPACT_GOALS = {"over_rrdb_x4": 0.35, "over_pytorch": 0.8}


def compact_ratios(results: list, default: str) -> dict:
    """SRVGGNetCompact's time on the default backend over the shipped RRDB's (rrdb_x4's size; the
    paper's 23 blocks when not shipped) on the same backend and over PyTorch's SRVGGNetCompact, per LR
    size: medians of wall time ("over_rrdb_x4", "over_pytorch") and of process CPU time ("..._cpu":
    with one thread, the time the model itself took, steadier than wall time when other processes
    share the core); with the goals and printable lines."""
    key = "tf" if default == "tensorflow" else default
    by_key = {e["key"]: e for e in results}
    compact = by_key.get("compact", {}).get(key)
    found = {"backend": default, "goals": COMPACT_GOALS, "lines": []}
    if compact is None:
        return found
    mine = {r["size"]: r for r in compact["rows"]}
    rrdb_key = "rrdb_shipped" if "rrdb_shipped" in by_key else "rrdb"
    for name, other, label in (("over_rrdb_x4", by_key.get(rrdb_key, {}).get(key),
                                f"{by_key.get(rrdb_key, {}).get('label')} [same backend]"),
                               ("over_pytorch", by_key["compact"].get("torch"), "PyTorch SRVGGNetCompact")):
        if other is None:
            continue
        rows = [(r["size"], mine[r["size"]], r) for r in other["rows"] if r["size"] in mine]
        found[name] = {str(s): a["wall_s"] / b["wall_s"] for s, a, b in rows}
        found[name + "_cpu"] = {str(s): a["cpu_s"] / b["cpu_s"] for s, a, b in rows if b["cpu_s"] > 0}
        cpu = found[name + "_cpu"]
        shown = ", ".join(f"{s}x{s}: {found[name][str(s)]:.3f} wall, {cpu.get(str(s), float('nan')):.3f} CPU"
                          for s, _, _ in rows)
        found["lines"].append(f"SRVGGNetCompact [{SHOWN['tensorflow' if key == 'tf' else key]}] / {label}: {shown} "
                              f"(goal <= {COMPACT_GOALS[name]})")
    if rrdb_key != "rrdb_shipped":
        found["rrdb"] = rrdb_key  # the shipped checkpoint's JSON was not there
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_speed", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="LR input sides")
    parser.add_argument("--runs", type=int, default=3, help="timed runs after the warm-up (median reported)")
    parser.add_argument("--backends", nargs="+", choices=ENGINES, help="ours to time (default: all installed)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--in-process", action="store_true", help="no child processes (RSS not per model)")
    parser.add_argument("--tiny", action="store_true", help="2-block SRResNet/RRDB (tests)")
    parser.add_argument("--only", nargs="+", help="generator keys to time (srcnn, srresnet, rrdb, compact, "
                        "rrdb_shipped, ...)")
    parser.add_argument("--threads", type=int, help="threads of every framework (default: each one's own)")
    parser.add_argument("--json", help="write all numbers here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        task = json.loads(args.child)
        if task["task"] == "convert":
            print(json.dumps(convert(task["gen"], task["framework"], task["folder"])))
        else:
            print(json.dumps(measure(task["gen"], task["framework"], task["sizes"], task["runs"], task["model_path"],
                                     task.get("threads"))))
        return 0
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    payload = run(args.sizes, args.runs, not args.no_torch, args.in_process, args.tiny, engines=args.backends,
                  only=args.only, threads=args.threads)
    if args.json:
        from benchmarks.bench_quality import write_result

        write_result(payload, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
