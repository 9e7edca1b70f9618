"""`python -m benchmarks.report --quick` writes RESULTS.md whose tables and figures match the scripts' JSON."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def sections(text: str) -> dict:
    """{"## heading": [table rows as lists of cells]}."""
    out, current = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            current = out.setdefault(line[3:].strip(), [])
        elif current is not None and line.startswith("| ") and not line.startswith("| ---"):
            current.append([c.strip() for c in line.strip().strip("|").split("|")])
    return out


def find(results, key, dataset, scale):
    return next(r for r in results if r["key"] == key and r["dataset"] == dataset and r["scale"] == scale)


@pytest.fixture(scope="module")
def report(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("report")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.report", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    return out, (out / "RESULTS.md").read_text(), results, proc.stdout


def test_document_and_figures(report):
    out, text, results, _ = report
    tables = sections(text)
    assert tables["Table 1: SRCNN vs bicubic (Y-PSNR dB / SSIM)"][0] == [
        "Data set", "Scale", "Bicubic PSNR", "Bicubic SSIM", "SRCNN PSNR", "SRCNN SSIM"]
    assert tables["Table 2: x4, PSNR / SSIM"][0] == ["Method", "Set5 PSNR", "Set5 SSIM", "Set14 PSNR", "Set14 SSIM"]
    assert "Quick mode" in text  # reduced sizes are stated
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 8  # crops, perception-distortion, training curves, GAN-basics figures
    for link in links:
        assert (out / link).is_file() and (out / link).stat().st_size > 1000, link
    for name in ("perception_distortion.png", "training_curves.png", "crops_Set5_butterfly_x4.png"):
        assert f"figures/{name}" in links
    assert {"quality", "speed", "training", "sweep", "gan_toys", "curves"} <= set(results)


def test_numbers_equal_the_scripts_json(report):
    _, text, results, stdout = report
    tables = sections(text)
    q = results["quality"]["results"]
    for dataset, scale, bp, bs, sp, ss in tables["Table 1: SRCNN vs bicubic (Y-PSNR dB / SSIM)"][1:]:
        b, s = find(q, "bicubic", dataset, int(scale[1:])), find(q, "srcnn", dataset, int(scale[1:]))
        assert [bp, bs, sp, ss] == [f"{b['psnr']:.2f}", f"{b['ssim']:.4f}", f"{s['psnr']:.2f}", f"{s['ssim']:.4f}"]
    assert len(tables["Table 1: SRCNN vs bicubic (Y-PSNR dB / SSIM)"]) == 1 + 6
    labels = {m["label"]: m["key"] for m in results["quality"]["models"]}
    rows = tables["Table 2: x4, PSNR / SSIM"][1:]
    assert [r[0] for r in rows[:3]] == ["nearest", "bicubic", "SRCNN (shipped, 9-5-5 Y)"]
    for label, *cells in rows:
        expected = []
        for dataset in ("Set5", "Set14"):
            r = find(q, labels[label], dataset, 4)
            expected += [f"{r['psnr']:.2f}", f"{r['ssim']:.4f}"]
        assert cells == expected, label
    # the same numbers were printed by bench_quality
    b = find(q, "bicubic", "Set5", 4)
    assert f"PSNR {b['psnr']:6.2f}  SSIM {b['ssim']:.4f}" in stdout

    speed = [r for e in results["speed"]["results"] for r in e["tf"]["rows"]]
    md_speed = tables["Speed (forward pass, batch 1)"][1:]
    assert [row[2] for row in md_speed] == [f"{r['wall_s']:.3f}" for r in speed]
    training = results["training"]["results"]
    md_training = tables["Training speed"][1:]
    assert [row[2] for row in md_training] == [f"{r['steps_per_s']:.3f}" for r in training]
    assert f"{results['training']['pipeline']['patches_per_s']:.0f} patches/s" in text
    sweep = results["sweep"]
    md_sweep = tables["Perception-distortion (network vs pixel interpolation)"][1:]
    expected = [f"{r['psnr']:.3f}" for r in sweep["network"]]
    for ours in sweep.get("ours", []):  # our own PSNR -> GAN pairs follow, each under its header row
        expected += ["network PSNR"] + [f"{r['psnr']:.3f}" for r in ours["network"]]
    assert [row[1] for row in md_sweep] == expected


def test_reuse_refreshes_one_stage_and_keeps_the_others(report):
    out, before, results, _ = report
    speed_json = (out / "results" / "speed.json").read_text()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.report", "--quick", "--out", str(out),
                           "--only", "curves", "--reuse"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (out / "RESULTS.md").read_text()
    assert "kept from the previous regeneration (`--reuse`)" in text
    # the kept stages' tables, numbers and figures are the earlier run's
    tables, old = sections(text), sections(before)
    for heading in ("Table 1: SRCNN vs bicubic (Y-PSNR dB / SSIM)", "Table 2: x4, PSNR / SSIM",
                    "Speed (forward pass, batch 1)", "Perception-distortion (network vs pixel interpolation)"):
        assert tables[heading] == old[heading], heading
    assert (out / "results" / "speed.json").read_text() == speed_json
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (out / link).is_file(), link
    assert "figures/crops_Set5_butterfly_x4.png" in text


def test_curves_come_from_every_registered_chapter(tmp_path):
    from benchmarks.report import _history_files
    from common.registry import Chapter, register_chapter, unregister_chapter

    for folder in ("newchapter", "notachapter", "srcnn"):
        (tmp_path / folder / "weights").mkdir(parents=True)
        (tmp_path / folder / "weights" / f"{folder}_x4.history.json").write_text("{}")
    assert _history_files(tmp_path) == [tmp_path / "srcnn" / "weights" / "srcnn_x4.history.json"]
    register_chapter(Chapter(name="newchapter", display_name="New"))
    try:
        files = _history_files(tmp_path)
    finally:
        unregister_chapter("newchapter")
    assert files == [tmp_path / "newchapter" / "weights" / "newchapter_x4.history.json",
                     tmp_path / "srcnn" / "weights" / "srcnn_x4.history.json"]
