"""Licence-clean training photographs from the package registries: manifest, checks and assembly.

The manifest (``data/training_images.json``) lists free photographs that Debian packages and
pip wheels ship, one entry per image, with where it lives, its licence and copyright line as
the package's copyright file states them, and its size, dimensions and SHA-256, all measured
from the files.  ``assemble`` finds each file (at its installed path, or in the package fetched
with ``apt-get download`` and unpacked with ``dpkg-deb -x`` into a temporary folder), checks it
against the manifest and writes it as an 8-bit RGB PNG into one flat folder that the training
commands take as ``--train-data``::

    python -m common.training_images list
    python -m common.training_images check
    python -m common.training_images assemble -o /work/data/train_photos [--sources mate-backgrounds ...]

Downscaling (``--max-side``, default 2040 px for the shorter side, as DIV2K): a high-resolution
target should be free of the camera's own degradations.  A photo at full sensor resolution
carries demosaicing artefacts, sensor noise and JPEG block/ringing artefacts at the pixel
scale; a Lanczos reduction by a factor s averages about s*s source pixels into each output
pixel, which lowers uncorrelated noise by roughly a factor s and pushes the 8x8 JPEG block
grid and mosquito noise below the new sampling rate, where the filter removes them, while the
image content itself is kept up to the new Nyquist limit.  The result is closer to what an
SR model should learn to produce (clean, sharp detail) than the camera file is.

Some Debian wallpapers are stored inside containers: Enlightenment's ``.edj`` files (EET)
hold each photograph as plain JPEG streams at several sizes.  For those, the manifest records
the container (size, SHA-256) and, under ``extract``, the byte range of the largest JPEG
stream and its own SHA-256, so the photograph is cut out without any Enlightenment tool.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MANIFEST = Path(__file__).resolve().parents[1] / "data" / "training_images.json"
DEFAULT_MAX_SIDE = 2040

# DFSG-free licences accepted for training images (SPDX ids; LicenseRef-PublicDomain for
# works that the source states are in the public domain).
ALLOWED_LICENSES = frozenset({
    "GPL-2.0-or-later",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "MIT",
    "CC0-1.0",
    "CC-BY-4.0",
    "CC-BY-SA-3.0",
    "CC-BY-SA-4.0",
    "LicenseRef-PublicDomain",
})

# Published SR benchmark / test sets: no name may contain one of these set names ...
FORBIDDEN_SET_NAMES = (
    "bsd100", "b100", "bsd200", "bsd300", "bsd500", "bsds", "urban100", "manga109", "realsr",
    "drealsr", "set5", "set14", "div2k", "flickr2k", "general100", "t91", "sun80", "pirm",
)
# ... nor be one of their image names (Set5, Set14; BSD images are numbered, Urban100 "img_NNN").
FORBIDDEN_IMAGE_NAMES = frozenset({
    "baby", "bird", "butterfly", "head", "woman", "baboon", "barbara", "bridge", "coastguard", "comic",
    "face", "flowers", "foreman", "lenna", "man", "monarch", "pepper", "ppt3", "zebra",
})


def forbidden_name(name: str) -> bool:
    low = name.lower()
    stem = low.rsplit(".", 1)[0]
    return (any(s in low for s in FORBIDDEN_SET_NAMES) or stem in FORBIDDEN_IMAGE_NAMES
            or stem.isdigit() or stem.startswith("img_"))


REQUIRED_FIELDS = ("name", "source", "path", "license", "copyright", "width", "height", "bytes", "sha256")
SOURCE_FIELDS = {"deb": ("package", "version"), "pip": ("package", "version")}


class ManifestError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------
# manifest


def load_manifest(path=DEFAULT_MANIFEST) -> dict:
    with open(path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    problems = validate_manifest(manifest)
    if problems:
        raise ManifestError(f"{path}: " + "; ".join(problems))
    return manifest


def _is_sha256(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def validate_manifest(manifest: dict) -> list[str]:
    """Every problem found in a manifest, as short sentences (empty list: well formed)."""
    problems = []
    sources = manifest.get("sources")
    images = manifest.get("images")
    if not isinstance(sources, dict) or not isinstance(images, list):
        return ["needs a 'sources' object and an 'images' list"]
    for key, src in sources.items():
        kind = src.get("kind")
        if kind not in SOURCE_FIELDS:
            problems.append(f"source {key}: kind must be one of {sorted(SOURCE_FIELDS)}")
            continue
        for f in SOURCE_FIELDS[kind]:
            if not src.get(f):
                problems.append(f"source {key}: missing {f}")
    seen = set()
    for i, e in enumerate(images):
        name = e.get("name", f"#{i}")
        for f in REQUIRED_FIELDS:
            if e.get(f) in (None, ""):
                problems.append(f"{name}: missing {f}")
        if name in seen:
            problems.append(f"{name}: duplicate name")
        seen.add(name)
        if not isinstance(name, str) or not name or any(c in name for c in "/\\") or name.startswith("."):
            problems.append(f"{name}: bad name")
        elif forbidden_name(name):
            problems.append(f"{name}: looks like a published SR test/benchmark image")
        if e.get("source") not in sources:
            problems.append(f"{name}: unknown source {e.get('source')!r}")
        if e.get("license") not in ALLOWED_LICENSES:
            problems.append(f"{name}: licence {e.get('license')!r} is not in the allowed list")
        if not _is_sha256(e.get("sha256")):
            problems.append(f"{name}: sha256 must be 64 lowercase hex digits")
        for f in ("width", "height", "bytes"):
            if not (isinstance(e.get(f), int) and e.get(f) > 0):
                problems.append(f"{name}: {f} must be a positive integer")
        ex = e.get("extract")
        if ex is not None:
            if ex.get("kind") != "jpeg-stream" or not _is_sha256(ex.get("sha256")) \
                    or not isinstance(ex.get("offset"), int) or not isinstance(ex.get("bytes"), int):
                problems.append(f"{name}: extract needs kind 'jpeg-stream', offset, bytes and sha256")
    return problems


def select(manifest: dict, sources=None) -> list[dict]:
    images = manifest["images"]
    if sources:
        unknown = set(sources) - set(manifest["sources"])
        if unknown:
            raise ManifestError(f"unknown source(s): {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(sorted(manifest['sources']))}")
        images = [e for e in images if e["source"] in sources]
    return images


def output_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(w, h) after scaling so that the shorter side is at most max_side (aspect kept)."""
    short = min(width, height)
    if not max_side or short <= max_side:
        return width, height
    scale = max_side / short
    if width <= height:
        return max_side, max(1, round(height * scale))
    return max(1, round(width * scale)), max_side


# ---------------------------------------------------------------------------------------------
# files


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def jpeg_stream_end(data: bytes, start: int) -> int:
    """End offset (exclusive) of the JPEG stream that starts with SOI at `start`."""
    if data[start:start + 2] != b"\xff\xd8":
        raise ValueError("no JPEG SOI marker at offset")
    i = start + 2
    n = len(data)
    while i < n:
        if data[i] != 0xFF:
            raise ValueError(f"bad JPEG marker at {i}")
        while i + 1 < n and data[i + 1] == 0xFF:  # fill bytes
            i += 1
        marker = data[i + 1]
        if marker == 0xD9:
            return i + 2
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        i += 2 + length
        if marker == 0xDA:  # entropy-coded data up to the next real marker
            while True:
                j = data.find(b"\xff", i)
                if j < 0 or j + 1 >= n:
                    raise ValueError("JPEG stream has no end")
                nxt = data[j + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                    i = j + 2
                    continue
                i = j
                break
    raise ValueError("JPEG stream has no end")


def largest_jpeg_stream(data: bytes) -> tuple[int, int, tuple[int, int]]:
    """(offset, length, (w, h)) of the JPEG stream with most pixels in a container file."""
    from PIL import Image

    best = None
    pos = data.find(b"\xff\xd8\xff")
    while pos >= 0:
        try:
            end = jpeg_stream_end(data, pos)
            with Image.open(io.BytesIO(data[pos:end])) as im:
                size = im.size
            if best is None or size[0] * size[1] > best[2][0] * best[2][1]:
                best = (pos, end - pos, size)
            nxt = end
        except Exception:  # noqa: BLE001 - not a JPEG stream after all
            nxt = pos + 3
        pos = data.find(b"\xff\xd8\xff", nxt)
    if best is None:
        raise ValueError("no JPEG stream found")
    return best


@dataclass
class Locator:
    """Finds manifest files: search roots first, then (for Debian sources) the package itself."""

    roots: list[Path] = field(default_factory=lambda: [Path("/")])
    download: bool = True
    cache_dir: Path | None = None
    log: object = print
    _extracted: dict = field(default_factory=dict)
    _tmp: tempfile.TemporaryDirectory | None = None

    def close(self):
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _workdir(self) -> Path:
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            return self.cache_dir
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="training_images_")
        return Path(self._tmp.name)

    def _candidates(self, source: dict, rel: str) -> list[Path]:
        rel = rel.lstrip("/")
        out = [root / rel for root in self.roots]
        if source["kind"] == "pip":
            try:
                from importlib.metadata import PackageNotFoundError, distribution

                out.append(Path(distribution(source["package"]).locate_file(rel)))
            except PackageNotFoundError:
                pass
        return out

    def _fetch_deb(self, source: dict) -> Path:
        pkg, version = source["package"], source["version"]
        if pkg in self._extracted:
            return self._extracted[pkg]
        work = self._workdir()
        target = work / f"{pkg}_root"
        if not (target / ".complete").exists():
            debs = work / "debs"
            debs.mkdir(exist_ok=True)
            for spec in (f"{pkg}={version}", pkg):
                self.log(f"  downloading Debian package {spec} ...")
                proc = subprocess.run(["apt-get", "download", "-q", spec], cwd=debs,
                                      capture_output=True, text=True)
                found = sorted(debs.glob(f"{pkg}_*.deb"))
                if proc.returncode == 0 and found:
                    break
                why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
                self.log(f"  apt-get download {spec} failed: {why}")
            else:
                raise FileNotFoundError(f"could not download Debian package {pkg} "
                                        "(run 'apt-get update' first?)")
            if target.exists():
                shutil.rmtree(target)
            subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(target)], check=True)
            (target / ".complete").touch()
            if self.cache_dir is None:
                found[-1].unlink()
        self._extracted[pkg] = target
        return target

    def find(self, entry: dict, source: dict) -> Path:
        """A file whose size matches the manifest, else any existing one, else FileNotFoundError."""
        existing = None
        for p in self._candidates(source, entry["path"]):
            if p.is_file():
                if p.stat().st_size == entry["bytes"]:
                    return p
                existing = existing or p
        if source["kind"] == "deb" and self.download:
            try:
                p = self._fetch_deb(source) / entry["path"].lstrip("/")
            except (FileNotFoundError, subprocess.CalledProcessError) as exc:
                if existing is None:
                    raise FileNotFoundError(str(exc)) from exc
                return existing
            if p.is_file():
                return p
        if existing is not None:
            return existing
        how = {"deb": f"Debian package {source['package']}", "pip": f"pip package {source['package']}"}
        raise FileNotFoundError(f"not found ({how[source['kind']]}, {entry['path']})")

    def copyright_file(self, source: dict) -> Path | None:
        if source["kind"] != "deb":
            return None
        rel = f"usr/share/doc/{source['package']}/copyright"
        roots = list(self.roots)
        if source["package"] in self._extracted:
            roots.insert(0, self._extracted[source["package"]])
        for root in roots:
            if (root / rel).is_file():
                return root / rel
        return None


def read_verified(entry: dict, source: dict, locator: Locator) -> bytes:
    """The image file's bytes (the cut-out JPEG stream for containers), checked against the manifest."""
    path = locator.find(entry, source)
    data = path.read_bytes()
    if len(data) != entry["bytes"]:
        raise ValueError(f"size {len(data)} bytes != manifest {entry['bytes']} ({path})")
    digest = sha256_bytes(data)
    if digest != entry["sha256"]:
        raise ValueError(f"checksum sha256 {digest} != manifest {entry['sha256']} ({path})")
    ex = entry.get("extract")
    if ex:
        data = data[ex["offset"]:ex["offset"] + ex["bytes"]]
        digest = sha256_bytes(data)
        if len(data) != ex["bytes"] or digest != ex["sha256"]:
            raise ValueError(f"checksum of embedded JPEG {digest} != manifest {ex['sha256']}")
    return data


# ---------------------------------------------------------------------------------------------
# images


def decode_rgb8(data: bytes):
    """Encoded image -> 8-bit RGB PIL image (sRGB if it carries another ICC profile)."""
    from PIL import Image, ImageCms

    im = Image.open(io.BytesIO(data))
    im.load()
    icc = im.info.get("icc_profile")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        alpha = im.getchannel("A")
        if alpha.getextrema()[0] < 255:  # composite translucent parts over black
            black = Image.new("RGBA", im.size, (0, 0, 0, 255))
            im = Image.alpha_composite(black, im)
    if im.mode != "RGB":
        im = im.convert("RGB")
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            desc = ImageCms.getProfileDescription(src) or ""
            if "srgb" not in desc.lower().replace(" ", ""):
                im = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:  # noqa: BLE001 - a broken profile: keep the pixel values
            pass
    return im


def downscale(im, max_side: int | None):
    from PIL import Image

    size = output_size(im.width, im.height, max_side)
    if size == im.size:
        return im
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=None)


def png_size(path: Path) -> tuple[int, int] | None:
    """(w, h) from a PNG header, or None when the file is not a whole PNG."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
            fh.seek(-12, os.SEEK_END)
            tail = fh.read(12)
    except OSError:
        return None
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR" or tail[4:8] != b"IEND":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def write_png_atomic(im, path: Path):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        im.save(tmp, format="PNG", compress_level=6)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_text_atomic(path: Path, text: str):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# commands


def _mp(w, h) -> float:
    return w * h / 1e6


def _source_label(source: dict) -> str:
    return f"{source['package']} {source['version']} ({source['kind']})"


def cmd_list(manifest: dict, images: list[dict], out=None) -> dict:
    out = out or sys.stdout
    sources = manifest["sources"]
    rows = [("name", "source", "licence", "size", "MP", "MB")]
    for e in images:
        rows.append((e["name"], sources[e["source"]]["package"], e["license"], f"{e['width']}x{e['height']}",
                     f"{_mp(e['width'], e['height']):.2f}", f"{e['bytes'] / 1e6:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        print("  ".join(c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip(),
              file=out)
        if k == 0:
            print("  ".join("-" * w for w in widths), file=out)
    totals = {
        "images": len(images),
        "megapixels": round(sum(_mp(e["width"], e["height"]) for e in images), 2),
        "bytes": sum(e["bytes"] for e in images),
        "by_source": {}, "by_license": {},
    }
    for e in images:
        mp = _mp(e["width"], e["height"])
        for key, val in (("by_source", e["source"]), ("by_license", e["license"])):
            n, m = totals[key].get(val, (0, 0.0))
            totals[key][val] = (n + 1, m + mp)
    print(f"total: {totals['images']} images, {totals['megapixels']:.1f} megapixels, "
          f"{totals['bytes'] / 1e6:.1f} MB of original files", file=out)
    for key, label in (("by_source", "source"), ("by_license", "licence")):
        for val, (n, m) in sorted(totals[key].items()):
            print(f"  {label} {val}: {n} images, {m:.1f} MP", file=out)
    return totals


def cmd_check(manifest: dict, images: list[dict], locator: Locator, out=None) -> int:
    out = out or sys.stdout
    errors = 0
    for e in images:
        source = manifest["sources"][e["source"]]
        try:
            data = read_verified(e, source, locator)
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                if im.size != (e["width"], e["height"]):
                    raise ValueError(f"size {im.size[0]}x{im.size[1]} != manifest {e['width']}x{e['height']}")
            print(f"ok {e['name']}", file=out)
        except (OSError, ValueError) as exc:
            errors += 1
            print(f"error: {e['name']}: {exc}", file=out)
    print(f"{len(images) - errors} passed, {errors} failed", file=out)
    return 1 if errors else 0


def licences_text(manifest: dict, images: list[dict]) -> str:
    lines = [
        "Training photographs assembled by `python -m common.training_images assemble`.",
        "Each PNG here is a converted (and possibly downscaled) copy of the original file named below;",
        "its licence and copyright are the ones the source package's copyright file gives for that file.",
        "Licence texts: /usr/share/common-licenses/ on Debian, https://spdx.org/licenses/<id>.html,",
        "and the package copyright files copied into licences/ (Debian sources).",
        "",
    ]
    for e in images:
        src = manifest["sources"][e["source"]]
        lines.append(f"{e['name']}.png")
        lines.append(f"  licence:   {e['license']}")
        lines.append(f"  copyright: {e['copyright']}")
        if e.get("license_note"):
            lines.append(f"  note:      {e['license_note']}")
        lines.append(f"  source:    {_source_label(src)}: {e['path']}")
        lines.append(f"  original:  {e['width']}x{e['height']}, {e['bytes']} bytes, sha256 {e['sha256']}")
        lines.append("")
    return "\n".join(lines)


def cmd_assemble(manifest: dict, images: list[dict], out_dir: Path, locator: Locator, max_side: int | None,
                 out=None) -> int:
    out = out or sys.stdout
    out_dir.mkdir(parents=True, exist_ok=True)
    errors = 0
    done = []
    started = time.monotonic()
    mp_in = mp_out = 0.0
    for k, e in enumerate(images, 1):
        t0 = time.monotonic()
        target = out_dir / f"{e['name']}.png"
        want = output_size(e["width"], e["height"], max_side)
        prefix = f"[{k:>{len(str(len(images)))}}/{len(images)}] {e['name']}"
        if png_size(target) == want:
            print(f"{prefix}: already done ({want[0]}x{want[1]})", file=out, flush=True)
            done.append((e, want))
            mp_in += _mp(e["width"], e["height"])
            mp_out += _mp(*want)
            continue
        source = manifest["sources"][e["source"]]
        try:
            data = read_verified(e, source, locator)
            im = decode_rgb8(data)
            if im.size != (e["width"], e["height"]):
                raise ValueError(f"decoded size {im.width}x{im.height} != manifest {e['width']}x{e['height']}")
            im = downscale(im, max_side)
            write_png_atomic(im, target)
        except (OSError, ValueError, subprocess.CalledProcessError) as exc:
            errors += 1
            print(f"error: {e['name']}: {exc}", file=out, flush=True)
            continue
        done.append((e, im.size))
        mp_in += _mp(e["width"], e["height"])
        mp_out += _mp(*im.size)
        print(f"{prefix}: {e['width']}x{e['height']} -> {im.width}x{im.height} "
              f"({_mp(*im.size):.1f} MP, {time.monotonic() - t0:.1f} s)", file=out, flush=True)
    # licences and the manifest of what is in the folder
    lic_dir = out_dir / "licences"
    for key in sorted({e["source"] for e, _ in done}):
        cfile = locator.copyright_file(manifest["sources"][key])
        if cfile is not None:
            lic_dir.mkdir(exist_ok=True)
            shutil.copyfile(cfile, lic_dir / f"{manifest['sources'][key]['package']}.copyright")
    _write_text_atomic(out_dir / "LICENCES.txt", licences_text(manifest, [e for e, _ in done]))
    copy = {
        "description": manifest.get("description", ""),
        "assembled": {"max_side": max_side or None, "images": len(done),
                      "megapixels_original": round(mp_in, 2), "megapixels_written": round(mp_out, 2)},
        "sources": manifest["sources"],
        "images": [dict(e, output={"file": f"{e['name']}.png", "width": s[0], "height": s[1]}) for e, s in done],
    }
    _write_text_atomic(out_dir / "training_images.json", json.dumps(copy, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(done)} images in {out_dir}: {mp_in:.1f} MP originals -> {mp_out:.1f} MP written "
          f"(max side {max_side or 'off'}), {errors} error(s), {time.monotonic() - started:.0f} s", file=out)
    return 1 if errors else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.training_images", description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST, help="manifest JSON (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, locate=True):
        p.add_argument("--sources", nargs="+", metavar="SOURCE", help="only these sources (manifest source keys)")
        if locate:
            p.add_argument("--root", type=Path, action="append", default=None,
                           help="look for the files under this folder first (repeatable; default /)")
            p.add_argument("--no-download", action="store_true",
                           help="never fetch Debian packages; use installed files only")
            p.add_argument("--cache-dir", type=Path, default=None,
                           help="keep downloaded/unpacked packages here (default: a temporary folder, removed)")

    common(sub.add_parser("list", help="print the manifest as a table with totals"), locate=False)
    common(sub.add_parser("check", help="verify the manifest's files (size, SHA-256, dimensions); writes nothing"))
    p = sub.add_parser("assemble", help="write the training folder")
    common(p)
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (created)")
    p.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                   help="downscale so the shorter side is at most this many px, Lanczos (0: keep; default %(default)s)")
    args = parser.parse_args(argv)

    try:
        manifest = load_manifest(args.manifest)
        images = select(manifest, args.sources)
    except (OSError, ManifestError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "list":
        cmd_list(manifest, images)
        return 0
    locator = Locator(roots=args.root or [Path("/")], download=not args.no_download, cache_dir=args.cache_dir)
    try:
        if args.command == "check":
            return cmd_check(manifest, images, locator)
        if args.max_side < 0:
            parser.error("--max-side must be >= 0")
        return cmd_assemble(manifest, images, args.output, locator, args.max_side or None)
    finally:
        locator.close()


if __name__ == "__main__":
    sys.exit(main())
