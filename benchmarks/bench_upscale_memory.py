"""Peak memory and time of the upscale CLI on a large image (goal: peak RSS < 3 GB).

    python -m benchmarks.bench_upscale_memory                    # 2000x2000 input, x4, largest generator
    python -m benchmarks.bench_upscale_memory --model standin    # a light x4 stand-in generator
    python -m benchmarks.bench_upscale_memory --weights esrgan/weights/rrdb_x4.h5 --size 500

The run uses `--backend` (default auto: OpenVINO when installed); its converted model is made and
cached by a separate process first, so the measured run is what a repeated upscale costs.
The model is, in order: --weights; else the largest shipped checkpoint among the chapters'
weights/ folders; else a freshly built esrgan.models.rrdb_generator() (23 RRDBs: hours on a
2-core CPU for a 2000x2000 input); else the stand-in. The upscale runs in a subprocess
(`python -m common.upscale_cli`, the chapters' code path) whose own peak RSS
(VmHWM, see bench_speed.rss_bytes) and wall time are reported with the machine and versions.
"""
import common  # noqa: F401  (quiet TensorFlow import)

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_speed import rss_bytes

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_WEIGHTS = [ROOT / chapter / "weights" for chapter in ("srcnn", "srgan", "esrgan")]
GOAL_BYTES = 3 * 10**9


def standin_generator(scale: int = 4, filters: int = 32, blocks: int = 4):
    """A light ESRGAN-shaped x4 generator (conv trunk, nearest x2 + conv stages, HR convs)."""
    import keras

    layers = keras.layers
    inp = keras.Input((None, None, 3))
    x = fea = layers.Conv2D(filters, 3, padding="same")(inp)
    for _ in range(blocks):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    x = layers.Add()([fea, x])
    for _ in range(int(np.log2(scale))):
        x = layers.UpSampling2D(2, interpolation="nearest")(x)
        x = layers.LeakyReLU(0.2)(layers.Conv2D(filters, 3, padding="same")(x))
    x = layers.LeakyReLU(0.2)(layers.Conv2D(filters, 3, padding="same")(x))
    return keras.Model(inp, layers.Conv2D(3, 3, padding="same")(x), name="standin")


def synthetic_image(size: int, seed: int = 0) -> np.ndarray:
    """A uint8 RGB picture with smooth gradients, edges and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.stack([x, y, 0.5 + 0.5 * np.sin(12 * (x + y))], axis=-1)
    img[(x * 16).astype(int) % 2 == (y * 16).astype(int) % 2] *= 0.7  # a checkerboard of edges
    img += rng.normal(0, 0.03, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def largest_shipped() -> Path | None:
    found = [p for folder in CHAPTER_WEIGHTS if folder.is_dir() for p in folder.glob("*.h5")
             if not p.name.endswith(".weights.h5")]
    return max(found, key=lambda p: p.stat().st_size) if found else None


def pick_model(args, workdir: Path) -> tuple[Path, str]:
    from common.checkpoints import save_model

    if args.weights:
        return Path(args.weights), f"{args.weights} (given)"
    if args.model == "auto":
        shipped = largest_shipped()
        if shipped is not None:
            return shipped, f"{shipped.relative_to(ROOT)} (largest shipped checkpoint)"
    if args.model in ("auto", "rrdb"):
        try:
            from esrgan.models import rrdb_generator
        except ImportError:
            if args.model == "rrdb":
                raise
        else:
            path = save_model(rrdb_generator(), workdir / "rrdb_x4.h5",
                              {"architecture": "rrdb_generator", "args": {}, "scale": 4,
                               "upsampling": "post", "color": "rgb"})
            return path, "esrgan.models.rrdb_generator() (fresh, 64 filters, 23 RRDBs)"
    path = save_model(standin_generator(), workdir / "standin_x4.h5",
                      {"architecture": "bench_standin", "args": {}, "scale": 4, "upsampling": "post",
                       "color": "rgb"})
    return path, "stand-in x4 generator (32 filters, 4 LR convs, 2 upsampling stages, HR conv)"


def machine() -> dict:
    import cv2
    import keras
    import tensorflow as tf

    mem = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":", 1)
        if key in ("MemTotal", "MemAvailable"):
            mem[key] = f"{int(value.split()[0]) / 2**20:.1f} GiB"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu,
            "cores": os.cpu_count(), **mem, "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
            "opencv": cv2.__version__, "gpus": len(tf.config.list_physical_devices("GPU"))}


def child(argv: list[str]) -> None:
    """Run the CLI in this process and print its peak RSS and time as JSON."""
    from common import upscale_cli

    start = time.perf_counter()
    code = upscale_cli.main(argv + ["-q"])
    elapsed = time.perf_counter() - start
    peak = rss_bytes()
    tensorflow_loaded = "tensorflow" in sys.modules
    # The tile size the CLI chose (worked out again after the measurement).
    from common.tiling import choose_tiling
    from common.upscaler import Upscaler

    backend = argv[argv.index("--backend") + 1] if "--backend" in argv else "auto"
    upscaler = Upscaler(argv[argv.index("--weights") + 1], backend=backend)
    tile, batch, _, _ = choose_tiling(upscaler.spec, (10**6, 10**6))
    print(json.dumps({"exit": code, "seconds": elapsed, "peak_rss": peak, "auto_tile": tile,
                      "batch": batch, "margin": upscaler.spec.margin, "backend": upscaler.backend,
                      "tensorflow_loaded": tensorflow_loaded}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", help="checkpoint to run (default: see the module docstring)")
    parser.add_argument("--model", choices=("auto", "rrdb", "standin"), default="auto")
    parser.add_argument("--size", type=int, default=2000, help="side of the square LR input")
    parser.add_argument("--tile", type=int, help="passed to the CLI (default: automatic)")
    parser.add_argument("--backend", default="auto", help="passed to the CLI (default auto); a converted "
                        "model is cached by a first run, so the measured run is a cached one")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child)
        return 0

    from common.images import write_image
    from common.tiling import available_memory

    with tempfile.TemporaryDirectory(prefix="bench_upscale_") as tmp:
        workdir = Path(tmp)
        weights, description = pick_model(args, workdir)
        source = workdir / "input.png"
        write_image(source, synthetic_image(args.size))
        output = workdir / "output.png"
        cli = [str(source), "-o", str(output), "--weights", str(weights), "--backend", args.backend]
        if args.tile is not None:
            cli += ["--tile", str(args.tile)]
        warm = subprocess.run([sys.executable, "-c", "import sys; from common.upscaler import Upscaler; "
                               "print(Upscaler(sys.argv[1], backend=sys.argv[2]).description)",
                               str(weights), args.backend], cwd=ROOT, capture_output=True, text=True)
        print(f"conversion (own process, before the measured run): {warm.stdout.strip() or warm.stderr.strip()}",
              flush=True)
        print(f"model: {description}\ninput: {args.size}x{args.size} synthetic RGB; "
              f"available memory {available_memory() / 2**30:.1f} GiB", flush=True)
        run = subprocess.run([sys.executable, "-m", "benchmarks.bench_upscale_memory", "--child", *cli],
                             cwd=ROOT, capture_output=True, text=True)
        if run.returncode != 0 or not run.stdout.strip():
            print(run.stderr, file=sys.stderr)
            return 1
        stats = json.loads(run.stdout.strip().splitlines()[-1])
        if stats["exit"] != 0:
            print(run.stderr, file=sys.stderr)
            return 1
        import cv2

        out = cv2.imread(str(output), cv2.IMREAD_UNCHANGED)
        result = {"model": description, "input": f"{args.size}x{args.size}",
                  "output": f"{out.shape[1]}x{out.shape[0]}",
                  "tile": args.tile or f"auto ({stats['auto_tile']} px, batch {stats['batch']}, "
                                       f"context {stats['margin']} px a side)",
                  "backend": stats["backend"], "tensorflow_loaded": stats["tensorflow_loaded"],
                  "seconds": round(stats["seconds"], 1), "peak_rss_gb": round(stats["peak_rss"] / 1e9, 3),
                  "goal_peak_rss_gb": GOAL_BYTES / 1e9, "within_goal": stats["peak_rss"] < GOAL_BYTES,
                  **machine()}
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["within_goal"] else 1


if __name__ == "__main__":
    sys.exit(main())
