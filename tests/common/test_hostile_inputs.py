"""Hostile and broken inputs (issue 34), each made on the fly and small on disk: image headers that
declare huge sizes, PNG metadata zip bombs, folders holding links in a loop, devices and pipes."""
import json
import os
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from common import png_chunks, upscale_cli
from common.images import ImageError, list_images, read_file
from tests.common.test_upscale_cli import files_in, run, smooth_rgb, weights, write  # noqa: F401


def header_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height RGB pixels, with a token IDAT: a few hundred bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    return png_chunks.join([(b"IHDR", ihdr), (b"IDAT", idat), (b"IEND", b"")])


def zeros_deflated(size: int) -> bytes:
    """zlib of `size` zero bytes, compressed a block at a time (never holding `size` bytes)."""
    deflater, block, parts = zlib.compressobj(9), bytes(1 << 20), []
    for _ in range(size >> 20):
        parts.append(deflater.compress(block))
    return b"".join(parts) + deflater.flush()


def good_png(path, shift=0):
    return write(path, np.roll(smooth_rgb(), shift, axis=1)[..., ::-1])


# --- 1. an image too large for memory ---------------------------------------------------------------------


def test_oversized_header_fails_that_file_only(tmp_path, weights, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    good_png(folder / "a.png")
    (folder / "b.png").write_bytes(header_png(50000, 50000))
    good_png(folder / "c.png", 5)
    assert len((folder / "b.png").read_bytes()) < 400
    code, err = run([folder, "-o", out, "--manifest", tmp_path / "m.jsonl"], weights["nearest"], capsys)
    assert code == 1
    assert f"error: {folder / 'b.png'}: 50000x50000 px is over --max-pixels " in err
    assert "1 of 3 images failed" in err
    assert files_in(out) == ["a_x2.png", "c_x2.png"]  # nothing partial, no lock left
    log = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [e["status"] for e in log] == ["ok", "failed", "ok"]
    assert "50000x50000 px" in log[1]["error"]
    # a resumed run goes past it too
    code, err = run([folder, "-o", out, "--skip-existing"], weights["nearest"], capsys)
    assert code == 1 and "1 of 3 images failed" in err


def test_size_check_is_not_evaded_by_a_chunk_pillow_refuses(tmp_path, weights, capsys):
    # Pillow reads the chunks before IDAT and gives up on this one: the size must come from IHDR
    src = tmp_path / "sneaky.png"
    src.write_bytes(with_chunks(header_png(30000, 30000), [(b"zTXt", b"Comment\0\0" + zeros_deflated(16 << 20))]))
    code, err = run([src, "-o", tmp_path / "x.png", "--max-pixels", "1M"], weights["nearest"], capsys)
    assert code == 2 and "30000x30000 px is over --max-pixels 1,000,000" in err


def test_max_pixels_flag(tmp_path, weights, capsys):
    src = good_png(tmp_path / "in.png")  # 28 x 20 = 560 px
    code, err = run([src, "-o", tmp_path / "x.png", "--max-pixels", "559"], weights["nearest"], capsys)
    assert code == 2 and err.strip() == f"error: {src}: 28x20 px is over --max-pixels 559"
    assert not (tmp_path / "x.png").exists()
    assert run([src, "-o", tmp_path / "x.png", "--max-pixels", "560"], weights["nearest"], capsys)[0] == 0
    assert upscale_cli._pixel_count("24M") == 24_000_000 and upscale_cli._pixel_count("1.5k") == 1500
    with pytest.raises(SystemExit):
        upscale_cli.build_parser(None).parse_args(["x", "--max-pixels", "lots"])


def test_no_pixel_limit_still_gives_one_line(tmp_path, weights, capsys):
    # --max-pixels 0: OpenCV's own limit (2^30 px) refuses it; that too is one line, not a crash
    src = tmp_path / "huge.png"
    src.write_bytes(header_png(50000, 50000))
    code, err = run([src, "-o", tmp_path / "x.png", "--max-pixels", "0"], weights["nearest"], capsys)
    assert code == 2 and err.startswith(f"error: {src}: cannot decode") and err.count("\n") == 1
    assert files_in(tmp_path) == ["huge.png"]


def test_default_limit_follows_memory_and_scale(monkeypatch):
    monkeypatch.setattr(upscale_cli.tiling, "available_memory", lambda: 8 << 30)
    x2, x4 = upscale_cli.default_max_pixels(2), upscale_cli.default_max_pixels(4)
    assert x2 == int(0.5 * (8 << 30) / (24 + 40 * 4)) and 3.5 < x2 / x4 < 4
    assert upscale_cli.default_max_pixels(4, self_ensemble=True) < x4
    assert upscale_cli.file_limit(x4) < 1 << 30 and upscale_cli.file_limit(0) is None


def test_default_limit_refuses_what_memory_cannot_hold(tmp_path, weights, capsys, monkeypatch):
    monkeypatch.setattr(upscale_cli.tiling, "available_memory", lambda: 100 << 20)  # 100 MiB free
    src = tmp_path / "big.png"
    src.write_bytes(header_png(4000, 3000))
    code, err = run([src, "-o", tmp_path / "x.png"], weights["nearest"], capsys)
    assert code == 2 and "4000x3000 px is over --max-pixels" in err and "x2 model" in err


# --- 2. PNG metadata zip bombs ------------------------------------------------------------------------------


def with_chunks(png: bytes, extra) -> bytes:
    chunks = png_chunks.split(png)
    return png_chunks.join([chunks[0], *extra, *chunks[1:]])


def test_text_bomb_is_dropped_and_the_image_upscaled(tmp_path, weights, capsys):
    bomb = (b"zTXt", b"Comment\0\0" + zeros_deflated(64 << 20))  # 64 MiB of text in ~64 KB
    src = tmp_path / "in.png"
    src.write_bytes(with_chunks(good_png(tmp_path / "plain.png").read_bytes(),
                                [png_chunks.text_chunk("Author", "Ann"), bomb]))
    assert src.stat().st_size < 200_000
    code, err = run([src, "-o", tmp_path / "out.png"], weights["nearest"], capsys)
    assert code == 0
    assert err.strip() == (f"warning: {src}: zTXt chunk 'Comment' dropped: inflates to more than 8 MiB "
                           "(metadata limit 8 MiB a chunk, 32 MiB in all)")
    out = tmp_path / "out.png"
    assert out.stat().st_size < 100_000
    with Image.open(out) as image:
        assert image.text == {"Author": "Ann"} and image.size == (56, 40)


@pytest.mark.parametrize("kind", [b"iCCP", b"iTXt"])
def test_profile_and_itxt_bombs_are_capped(kind):
    payload = zeros_deflated(16 << 20)
    data = b"name\0\0" + payload if kind == b"iCCP" else b"Note\0\1\0\0\0" + payload
    png = with_chunks(cv2.imencode(".png", smooth_rgb())[1].tobytes(), [(kind, data)])
    found = png_chunks.read_metadata(png)
    assert found["icc"] is None and found["text"] == {}
    assert len(found["dropped"]) == 1 and "inflates to more than 8 MiB" in found["dropped"][0]
    # what the decoder is given: the same PNG without that chunk (libpng would inflate it again)
    kept = png_chunks.remove_chunks(png, found["dropped_at"])
    assert [k for k, _ in png_chunks.split(kept)] == [k for k, _ in png_chunks.split(png) if k != kind]


def test_metadata_total_is_capped():
    chunks = [png_chunks.text_chunk(f"k{i}", "v" * 1000) for i in range(3)]
    chunks.append((b"zTXt", b"z\0\0" + zlib.compress(b"w" * 1000)))
    png = with_chunks(cv2.imencode(".png", smooth_rgb())[1].tobytes(), chunks)
    found = png_chunks.read_metadata(png, max_chunk=1500, max_total=2500)
    assert sorted(found["text"]) == ["k0", "k1"] and len(found["dropped"]) == 2
    assert png_chunks.read_metadata(png)["text"].keys() == {"k0", "k1", "k2", "z"}


# --- 5. folder walks ----------------------------------------------------------------------------------------


@pytest.fixture
def hostile_folder(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    good_png(folder / "a.png")
    good_png(folder / "z.png", 3)
    os.symlink("loop2.png", folder / "loop1.png")
    os.symlink("loop1.png", folder / "loop2.png")
    os.symlink("/dev/zero", folder / "zero.png")
    os.mkfifo(folder / "pipe.png")
    (folder / "dir.png").mkdir()
    os.symlink(folder / "a.png", folder / "link.png")  # a link to a regular file is read
    return folder


def test_list_images_takes_regular_files_only(hostile_folder):
    skipped = []
    found = list_images(hostile_folder, skipped)
    assert [p.name for p in found] == ["a.png", "link.png", "z.png"]
    reasons = {p.name: reason for p, reason in skipped}
    assert reasons == {"dir.png": "a folder, not a regular file", "loop1.png": "symlink loop",
                       "loop2.png": "symlink loop", "pipe.png": "a named pipe, not a regular file",
                       "zero.png": "a device, not a regular file"}


def test_read_file_refuses_before_reading(hostile_folder, tmp_path):
    with pytest.raises(ImageError, match="pipe.png: a named pipe, not a regular file"):
        read_file(hostile_folder / "pipe.png", regular_only=True)  # at once: no writer is waited for
    with pytest.raises(ImageError, match="zero.png: a device, not a regular file"):
        read_file(hostile_folder / "zero.png", regular_only=True)
    with pytest.raises(ImageError, match="zero.png: a device, not a regular file"):
        read_file(hostile_folder / "zero.png")  # even when named on the command line
    # a pipe named on the command line is read, but only up to the limit
    import threading

    def feed():
        try:
            with open(hostile_folder / "pipe.png", "wb") as f:
                f.write(bytes(1 << 20))
        except BrokenPipeError:  # the reader stopped at its limit
            pass

    writer = threading.Thread(target=feed)
    writer.start()
    with pytest.raises(ImageError, match="pipe.png: more than 64 KiB, the limit"):
        read_file(hostile_folder / "pipe.png", max_bytes=1 << 16)
    writer.join(10)
    sparse = tmp_path / "sparse.png"
    with open(sparse, "wb") as f:
        f.truncate(8 << 30)  # 8 GiB that take no space and must not be read
    with pytest.raises(ImageError, match="8,192 MiB is over the 1,024 MiB limit"):
        read_file(sparse)
    with pytest.raises(ImageError, match="loop1.png: symlink loop"):
        read_file(hostile_folder / "loop1.png")


def test_folder_run_skips_what_is_not_a_file(hostile_folder, tmp_path, weights, capsys):
    out = tmp_path / "out"
    code, err = run([hostile_folder, "-o", out, "--manifest", tmp_path / "m.jsonl"], weights["nearest"], capsys)
    assert code == 0, err
    assert files_in(out) == ["a_x2.png", "link_x2.png", "z_x2.png"]
    log = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [(os.path.basename(e["input"]), e["status"]) for e in log] == [
        ("dir.png", "skipped"), ("loop1.png", "skipped"), ("loop2.png", "skipped"), ("pipe.png", "skipped"),
        ("zero.png", "skipped"), ("a.png", "ok"), ("link.png", "ok"), ("z.png", "ok")]
    lines = sorted(err.splitlines())
    assert lines == [f"skipped: {hostile_folder / name}: {reason}" for name, reason in [
        ("dir.png", "a folder, not a regular file"), ("loop1.png", "symlink loop"),
        ("loop2.png", "symlink loop"), ("pipe.png", "a named pipe, not a regular file"),
        ("zero.png", "a device, not a regular file")]]


# --- 3. large outputs stay out of memory ---------------------------------------------------------------------


def _nearest_spec():
    from common.model_analysis import Spec

    return Spec(2, False, "rgb", (0.0, 1.0), (0.0, 1.0), 4, 0, 0, 1, 1000.0, 1)


def _nearest_run(x):
    return x.repeat(2, axis=1).repeat(2, axis=2) * 0.9 + 0.05


def test_disk_backed_frame_gives_the_same_pixels(monkeypatch):
    from common import tiling

    image = np.random.default_rng(3).random((45, 37, 3), dtype=np.float32)
    in_memory = tiling.tiled_upscale(image, _nearest_run, _nearest_spec(), tile=16)
    ensemble = tiling.geometric_self_ensemble(lambda im: tiling.tiled_upscale(im, _nearest_run, _nearest_spec(),
                                                                              tile=16), image)
    assert not tiling.is_disk_backed(in_memory)
    monkeypatch.setattr(tiling, "DISK_FRAME_BYTES", 0)
    on_disk = tiling.tiled_upscale(image, _nearest_run, _nearest_spec(), tile=16)
    assert tiling.is_disk_backed(on_disk)
    np.testing.assert_array_equal(on_disk, in_memory)
    ensemble_on_disk = tiling.geometric_self_ensemble(
        lambda im: tiling.tiled_upscale(im, _nearest_run, _nearest_spec(), tile=16), image)
    assert tiling.is_disk_backed(ensemble_on_disk)
    np.testing.assert_array_equal(ensemble_on_disk, ensemble)


@pytest.mark.parametrize("channels", [3, 4])
def test_cli_output_is_the_same_with_disk_backed_frames(tmp_path, weights, capsys, monkeypatch, channels):
    from common import tiling

    rgb = smooth_rgb(40, 52)[..., ::-1]
    alpha = np.linspace(0, 255, 52, dtype=np.uint8)[None, :].repeat(40, 0)
    pixels = np.dstack([rgb, alpha]) if channels == 4 else rgb
    src = write(tmp_path / "in.png", pixels)
    assert run([src, "-o", tmp_path / "mem.png", "--tile", "16"], weights["post"], capsys)[0] == 0
    monkeypatch.setattr(tiling, "DISK_FRAME_BYTES", 0)
    assert run([src, "-o", tmp_path / "disk.png", "--tile", "16"], weights["post"], capsys)[0] == 0
    assert (tmp_path / "disk.png").read_bytes() == (tmp_path / "mem.png").read_bytes()


def test_disk_backed_output_bounds_peak_memory(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = f"""
import sys
import numpy as np
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from common import tiling
from common.model_analysis import Spec
tiling.DISK_FRAME_BYTES = 1 << 62 if sys.argv[1] == "memory" else 0
spec = Spec(2, False, "rgb", (0.0, 1.0), (0.0, 1.0), 4, 0, 0, 1, 1000.0, 1)
image = np.random.default_rng(0).random((1500, 1500, 3), dtype=np.float32)  # 26 MB in, 103 MB out
out = tiling.tiled_upscale(image, lambda x: x.repeat(2, axis=1).repeat(2, axis=2), spec, tile=256)
print(float(out[::7, ::5].sum()), [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1])
"""
    results = {}
    for mode in ("memory", "disk"):
        done = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        checksum, peak_kb = done.stdout.split()
        results[mode] = (float(checksum), int(peak_kb) / 1024)
    assert results["disk"][0] == results["memory"][0]
    assert results["disk"][1] < results["memory"][1] - 60, results  # MiB: the 103 MB frame is not held
