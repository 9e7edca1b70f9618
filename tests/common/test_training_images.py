"""common.training_images: the committed manifest, and list/check/assemble on small made-up images.

Offline and fast: nothing here calls apt or reads the real packages; the assembly tests build a
temporary manifest over images generated in tmp_path and pass --root/--no-download.
"""

import hashlib
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from common import training_images as ti


def _photo(w, h, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], -1)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


def _encode(arr, fmt, mode=None):
    im = Image.fromarray(arr)
    if mode:
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _entry(name, rel, data, w, h, **extra):
    e = {"name": name, "source": "testpkg", "path": rel, "license": "CC0-1.0", "copyright": "2026, Test",
         "width": w, "height": h, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    e.update(extra)
    return e


@pytest.fixture
def world(tmp_path):
    """A fake package root with four images and a manifest over them."""
    root = tmp_path / "root"
    d = root / "usr/share/backgrounds/test"
    d.mkdir(parents=True)
    files = {
        "land.jpg": (_encode(_photo(300, 200, 1), "JPEG"), 300, 200),
        "tall.png": (_encode(_photo(120, 360, 2), "PNG", "RGBA"), 120, 360),
        "grey.png": (_encode(_photo(80, 60, 3), "PNG", "L"), 80, 60),
    }
    images = []
    for fname, (data, w, h) in files.items():
        (d / fname).write_bytes(data)
        images.append(_entry(f"test_{fname.split('.')[0]}", f"/usr/share/backgrounds/test/{fname}", data, w, h))
    # a container holding a small and a large JPEG stream, as Enlightenment's .edj files do
    small, large = _encode(_photo(64, 48, 4), "JPEG"), _encode(_photo(160, 90, 5), "JPEG")
    container = b"EET\x00header" + small + b"\x00junk\xff\xd8\xff\xe0broken" + large + b"tail"
    (d / "pack.edj").write_bytes(container)
    off = container.index(large)
    images.append(_entry("test_pack", "/usr/share/backgrounds/test/pack.edj", container, 160, 90,
                         extract={"kind": "jpeg-stream", "offset": off, "bytes": len(large),
                                  "sha256": hashlib.sha256(large).hexdigest()}))
    manifest = {"description": "test", "images": images,
                "sources": {"testpkg": {"kind": "deb", "package": "testpkg-not-in-debian", "version": "1.0-1"}}}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    return {"root": root, "manifest": manifest, "path": path, "out": tmp_path / "out", "large": large}


def _run(world, *args, manifest=None):
    path = world["path"]
    if manifest is not None:
        path.write_text(json.dumps(manifest))
    return ti.main(["--manifest", str(path), *args])


def _assemble(world, *args, manifest=None):
    return _run(world, "assemble", "-o", str(world["out"]), "--root", str(world["root"]), "--no-download",
                *args, manifest=manifest)


# --- the committed manifest -----------------------------------------------------------------


def test_committed_manifest_is_well_formed():
    manifest = json.loads(ti.DEFAULT_MANIFEST.read_text(encoding="utf-8"))
    assert ti.validate_manifest(manifest) == []
    names = [e["name"] for e in manifest["images"]]
    assert len(names) == len(set(names)) and len(names) >= 50
    for e in manifest["images"]:
        for f in ti.REQUIRED_FIELDS:
            assert e.get(f) not in (None, ""), (e.get("name"), f)
        assert re.fullmatch(r"[0-9a-f]{64}", e["sha256"])
        assert e["license"] in ti.ALLOWED_LICENSES
        assert not ti.forbidden_name(e["name"])
        src = manifest["sources"][e["source"]]
        assert src["kind"] in ("deb", "pip") and src["version"]
        if e.get("extract"):
            assert re.fullmatch(r"[0-9a-f]{64}", e["extract"]["sha256"])
    megapixels = sum(e["width"] * e["height"] for e in manifest["images"]) / 1e6
    assert megapixels > 100  # T91 + BSD200 hold 36 MP


@pytest.mark.parametrize("name", ["baboon", "Set14_zebra", "bsd100_3096", "3096", "img_012", "Urban100-x",
                                  "DIV2K_0801", "manga109_foo"])
def test_test_set_names_are_refused(name):
    assert ti.forbidden_name(name)


@pytest.mark.parametrize("name", ["mate_Aqua", "lxqt_flowers", "lomiri_Bridge_by_Sander_Klootwijk", "e_Bamboo"])
def test_ordinary_names_pass(name):
    assert not ti.forbidden_name(name)


def test_validate_reports_each_problem(world):
    m = world["manifest"]
    bad = dict(m["images"][0], sha256="abc", license="CC-BY-NC-4.0")
    dup = dict(m["images"][1], name=m["images"][2]["name"])
    test_set = dict(m["images"][0], name="Set5_baby")
    missing = {k: v for k, v in m["images"][0].items() if k != "copyright"}
    missing["name"] = "no_copyright"
    problems = " | ".join(ti.validate_manifest(dict(m, images=[bad, dup, m["images"][2], test_set, missing])))
    assert "sha256 must be 64" in problems
    assert "CC-BY-NC-4.0" in problems
    assert "duplicate name" in problems
    assert "Set5_baby: looks like a published SR test" in problems
    assert "no_copyright: missing copyright" in problems
    with pytest.raises(ti.ManifestError):
        world["path"].write_text(json.dumps(dict(m, images=[bad])))
        ti.load_manifest(world["path"])


# --- helpers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("w,h,side,want", [
    (300, 200, 100, (150, 100)), (120, 360, 100, (100, 300)), (80, 60, 100, (80, 60)),
    (3840, 2160, 2040, (3627, 2040)), (500, 500, None, (500, 500)), (6028, 3391, 2040, (3626, 2040)),
])
def test_output_size_keeps_aspect_and_bounds_shorter_side(w, h, side, want):
    assert ti.output_size(w, h, side) == want


def test_largest_jpeg_stream_cuts_exact_bytes(world):
    data = (world["root"] / "usr/share/backgrounds/test/pack.edj").read_bytes()
    off, n, size = ti.largest_jpeg_stream(data)
    assert data[off:off + n] == world["large"] and size == (160, 90)


# --- assemble / check / list ------------------------------------------------------------------


def test_assemble_writes_rgb_pngs_downscaled(world, capsys):
    assert _assemble(world, "--max-side", "100") == 0
    out = capsys.readouterr().out
    assert re.search(r"\[1/4\] test_land: 300x200 -> 150x100", out)
    sizes = {}
    for name in ("test_land", "test_tall", "test_grey", "test_pack"):
        with Image.open(world["out"] / f"{name}.png") as im:
            assert im.format == "PNG" and im.mode == "RGB"
            sizes[name] = im.size
    assert sizes == {"test_land": (150, 100), "test_tall": (100, 300), "test_grey": (80, 60),
                     "test_pack": (160, 90)}
    assert not list(world["out"].glob(".*tmp"))
    lic = (world["out"] / "LICENCES.txt").read_text()
    assert "test_land.png" in lic and "CC0-1.0" in lic and "2026, Test" in lic
    copy = json.loads((world["out"] / "training_images.json").read_text())
    assert copy["assembled"]["max_side"] == 100 and len(copy["images"]) == 4
    assert copy["images"][0]["output"] == {"file": "test_land.png", "width": 150, "height": 100}


def test_assemble_full_size_matches_original_pixels(world):
    assert _assemble(world, "--max-side", "0") == 0
    with Image.open(world["out"] / "test_grey.png") as im:
        got = np.asarray(im)
    src = Image.open(world["root"] / "usr/share/backgrounds/test/grey.png").convert("RGB")
    np.testing.assert_array_equal(got, np.asarray(src))


def test_checksum_mismatch_skips_that_image_and_exits_1(world, capsys):
    m = world["manifest"]
    m["images"][0]["sha256"] = "0" * 64
    assert _assemble(world, manifest=m) == 1
    out = capsys.readouterr().out
    assert re.search(r"^error: test_land: checksum sha256 [0-9a-f]{64} != manifest 0{64}", out, re.M)
    assert not (world["out"] / "test_land.png").exists()
    assert (world["out"] / "test_tall.png").exists()
    assert "test_land" not in (world["out"] / "LICENCES.txt").read_text()


def test_size_mismatch_and_missing_file_are_errors(world, capsys):
    m = world["manifest"]
    m["images"][1]["bytes"] += 1
    (world["root"] / "usr/share/backgrounds/test/grey.png").unlink()
    assert _assemble(world, manifest=m) == 1
    out = capsys.readouterr().out
    assert "error: test_tall: size" in out
    assert "error: test_grey: not found" in out
    assert (world["out"] / "test_land.png").exists()


def test_assemble_is_resumable(world, capsys):
    assert _assemble(world, "--max-side", "100") == 0
    first = {p.name: p.stat().st_mtime_ns for p in world["out"].glob("*.png")}
    (world["out"] / "test_tall.png").unlink()
    data = (world["out"] / "test_land.png").read_bytes()
    (world["out"] / "test_land.png").write_bytes(data[: len(data) // 2])  # a torn file is redone
    capsys.readouterr()
    assert _assemble(world, "--max-side", "100") == 0
    out = capsys.readouterr().out
    assert "test_grey: already done" in out and "test_pack: already done" in out
    assert "test_tall: 120x360 -> 100x300" in out and "test_land: 300x200 -> 150x100" in out
    now = {p.name: p.stat().st_mtime_ns for p in world["out"].glob("*.png")}
    assert now["test_grey.png"] == first["test_grey.png"]
    # another --max-side means other outputs: those are redone, not skipped
    assert _assemble(world, "--max-side", "0") == 0
    with Image.open(world["out"] / "test_land.png") as im:
        assert im.size == (300, 200)


def test_sources_filter(world, capsys):
    assert _assemble(world, "--sources", "testpkg") == 0
    assert _run(world, "list", "--sources", "nope") == 2


def test_check_verifies_without_writing(world, capsys):
    assert _run(world, "check", "--root", str(world["root"]), "--no-download") == 0
    assert "4 passed, 0 failed" in capsys.readouterr().out
    m = world["manifest"]
    m["images"][3]["extract"]["sha256"] = "f" * 64
    assert _run(world, "check", "--root", str(world["root"]), "--no-download", manifest=m) == 1
    assert "error: test_pack: checksum of embedded JPEG" in capsys.readouterr().out
    assert not world["out"].exists()


def test_list_totals_match(world, capsys):
    assert _run(world, "list") == 0
    out = capsys.readouterr().out
    images = world["manifest"]["images"]
    mp = sum(e["width"] * e["height"] for e in images) / 1e6
    mb = sum(e["bytes"] for e in images) / 1e6
    assert f"total: 4 images, {mp:.1f} megapixels, {mb:.1f} MB" in out
    assert "test_tall" in out and "120x360" in out
    totals = ti.cmd_list(world["manifest"], images, out=io.StringIO())
    assert totals["images"] == 4 and totals["megapixels"] == round(mp, 2)
    assert totals["by_license"]["CC0-1.0"][0] == 4


def test_decode_drops_opaque_alpha_and_composites_translucent_over_black():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = 255
    im = ti.decode_rgb8(_encode(rgba, "PNG"))
    assert im.mode == "RGB" and np.asarray(im).min() == 200
    rgba[0, 0, 3] = 0
    im = ti.decode_rgb8(_encode(rgba, "PNG"))
    assert tuple(np.asarray(im)[0, 0]) == (0, 0, 0) and tuple(np.asarray(im)[1, 1]) == (200, 200, 200)
