"""The upscale command every chapter shares (`python -m srcnn.upscale`, `srgan.upscale`, ...).

    python -m srcnn.upscale photo.jpg -o photo_x3.png
    python -m esrgan.upscale holiday/ -o holiday_x4/ --ext png
    python -m common.upscale_cli in.png -o out.png --weights my_model.h5

Keeps the input's bit depth (8/16), grey stays grey, alpha is kept (colour is premultiplied while
upscaling so edges do not darken), EXIF orientation is applied; the ICC profile, EXIF, XMP and
PNG text go to the output (`common.photo_metadata`). Every output file is written atomically under
a per-output lock, and folder runs resume (`--skip-existing`) and log (`--manifest`) through
`common.folder_run`; Ctrl-C stops after the current image (exit 130). A failure prints one line
`error: <file>: <reason>`; with several inputs the others are still done and a summary follows
(exit 1); a single failing input or a bad checkpoint exits 2.

Hostile inputs: an image's size is read from its header and checked against --max-pixels before
any pixel is decoded; a folder walk reads regular files only (links to them too) and skips links in
a loop, devices and named pipes with one `skipped:` line each; a file's size is checked before it
is read; PNG metadata chunks are inflated up to a cap (a larger one is dropped with one `warning:`
line); outputs larger than common.tiling.DISK_FRAME_BYTES are kept in a disk-backed array while
they are computed.
"""
import common  # noqa: F401  (quiet TensorFlow import)

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from common import backends, folder_run, inference, photo_metadata, png_chunks, registry, tiling
from common import colour as cms
from common.images import (
    IMAGE_EXTENSIONS,
    ImageError,
    check_pixels,
    decode_bytes,
    list_images,
    read_file,
    to_uint8,
    to_uint16,
)
from common.precision import PRECISION_HELP, PRECISIONS
from common.upscaler import UpscaleOptions, Upscaler

EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
SIXTEEN_BIT_FORMATS = (".png", ".tif", ".tiff")
ALPHA_FORMATS = (".png", ".tif", ".tiff", ".webp")
EXIF_ORIENTATION = 0x0112
# --max-pixels by default: this share of the available memory, at BYTES_PER_OUTPUT_PIXEL per output
# pixel (the float32 result with alpha, its temporaries and the quantised copy) plus
# BYTES_PER_INPUT_PIXEL per input pixel (decoded samples and their float32 copy).
MEMORY_SHARE = 0.5
BYTES_PER_OUTPUT_PIXEL, BYTES_PER_INPUT_PIXEL = 40, 24
SELF_ENSEMBLE_BYTES = 16  # per output pixel: the running sum of the 8 passes
MIN_FILE_LIMIT = 64 << 20  # bytes: room for metadata beyond the pixels in the file-size limit
BAND = 512  # output rows per step of the per-pixel passes after the model


class Failure(Exception):
    """One failed file (or a fatal set-up problem): `error: <subject>: <reason>`."""

    def __init__(self, subject, reason: str):
        super().__init__(f"{subject}: {reason}")
        self.subject, self.reason = str(subject), reason


def _reason(exc: Exception, subject) -> str:
    """The message of an exception without a leading "<subject>: " (ImageError adds one)."""
    text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    prefix = f"{subject}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


# --- reading ------------------------------------------------------------------------------------


def exif_orientation(path) -> int:
    """The EXIF orientation tag (1-8) of a file, read with Pillow; 1 when absent or unreadable."""
    try:
        from PIL import Image
    except ImportError:  # Pillow comes with matplotlib; without it orientation is ignored
        return 1
    try:
        with Image.open(path) as image:
            value = int(image.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:
        return 1
    return value if 1 <= value <= 8 else 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright as EXIF orientation 1-8 asks (like PIL's exif_transpose)."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(image)) if op else image


class Loaded:
    """An input image: colour float32 (H, W, 3) RGB or (H, W, 1) grey in [0, 1], alpha or None;
    `info` is its metadata (`photo_metadata.PhotoInfo`: ICC profile only if it fits the pixels)."""

    def __init__(self, colour, alpha, bit_depth, info=None):
        self.colour, self.alpha, self.bit_depth = colour, alpha, bit_depth
        self.info = info or photo_metadata.PhotoInfo()


def default_max_pixels(scale: int, self_ensemble: bool = False) -> int:
    """Input pixels an image may have by default: its buffers fit in a share of the free memory."""
    per_output = BYTES_PER_OUTPUT_PIXEL + (SELF_ENSEMBLE_BYTES if self_ensemble else 0)
    per_input = BYTES_PER_INPUT_PIXEL + per_output * max(int(scale), 1) ** 2
    return max(int(MEMORY_SHARE * tiling.available_memory() / per_input), 1)


def file_limit(max_pixels: int | None) -> int | None:
    """The byte limit of one input file under a pixel limit (8 bytes: 16-bit RGBA, uncompressed)."""
    return None if not max_pixels else 8 * max_pixels + MIN_FILE_LIMIT


def _pixel_count(text: str) -> int:
    """--max-pixels: an integer, optionally with k, M or G (powers of 1000): 24M, 1.5G."""
    factors = {"k": 10**3, "m": 10**6, "g": 10**9}
    value = text.strip()
    factor = factors.get(value[-1:].lower(), 1)
    try:
        number = float(value[:-1] if factor > 1 else value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a pixel count (e.g. 24000000 or 24M)") from None
    if not (number >= 0 and number * factor < 2**63):  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a pixel count >= 0")
    return int(number * factor)


def load_image(path, to_srgb: bool = False, max_pixels: int | None = None, regular_only: bool = False,
               hint: str = "") -> Loaded:
    """Decode with OpenCV (any depth), metadata with Pillow; upright; `to_srgb` converts a
    profiled 8-bit RGB image to sRGB (its profile is then replaced by sRGB's).

    The size in the file's header is checked against `max_pixels` before any pixel is decoded;
    `regular_only` refuses anything but a regular file (a folder walk's files)."""
    data = read_file(path, file_limit(max_pixels), regular_only)  # once: pixels and metadata
    check_pixels(data, path, max_pixels, hint)
    info = photo_metadata.read_info(data)  # from the header and metadata chunks only
    if info.dropped_at:  # the decoder need not inflate what was dropped either
        data = png_chunks.remove_chunks(data, info.dropped_at)
    raw = decode_bytes(data, path)  # BGR(A) or grey, as stored; raises ImageError
    del data
    if raw.dtype == np.uint8:
        depth, peak = 8, 255.0
    elif raw.dtype == np.uint16:
        depth, peak = 16, 65535.0
    else:
        raise ImageError(f"{path}: unsupported sample type {raw.dtype} (8- or 16-bit images only)")
    for reason in info.dropped:  # e.g. a zip bomb in a text chunk: the image is still upscaled
        _note(f"warning: {path}: {reason}")
    raw = apply_orientation(raw, info.orientation)
    if raw.ndim == 2:
        raw = raw[..., None]
    channels = raw.shape[2]
    if channels >= 3:
        raw = np.concatenate([raw[..., 2::-1], raw[..., 3:]], axis=2)  # BGR(A) -> RGB(A)
    if not cms.describes(info.icc, 1 if channels <= 2 else 3):
        info.icc = None  # e.g. a CMYK profile of a JPEG OpenCV decoded to RGB
    if to_srgb and info.icc and channels >= 3:
        if depth != 8:
            raise ImageError(f"{path}: --to-srgb works on 8-bit images only (Pillow's colour "
                             f"management has no 16-bit RGB); leave it out to keep the profile")
        raw = raw.copy()
        try:
            raw[..., :3] = cms.to_srgb(raw[..., :3], info.icc)
        except cms.ColourError as exc:
            raise ImageError(f"{path}: {exc}") from None
        info.icc = cms.srgb_profile()
    image = raw.astype(np.float32) / peak
    if channels == 1:
        return Loaded(image, None, depth, info)
    if channels == 2:  # grey + alpha
        return Loaded(image[..., :1].copy(), image[..., 1].copy(), depth, info)
    rgb = np.ascontiguousarray(image[..., :3])
    alpha = image[..., 3].copy() if channels == 4 else None
    return Loaded(rgb, alpha, depth, info)


# --- one image -----------------------------------------------------------------------------------


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W[, C]) to (h, w): INTER_AREA when shrinking, bicubic when enlarging."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    shrink = h * w < image.shape[0] * image.shape[1]
    out = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return out.reshape(h, w, *image.shape[2:])


def upscale_loaded(loaded: Loaded, upscaler: Upscaler, outscale=None, progress=None):
    """Upscale colour (and alpha); returns float32 (H', W', C[+1]) in [0, 1]."""
    colour, alpha = loaded.colour, loaded.alpha
    if alpha is not None:
        colour = colour * alpha[..., None]  # premultiply: transparent pixels carry no colour
    sr = upscaler(colour, progress)
    h, w = colour.shape[:2]
    scale = sr.shape[0] // h
    size = (round(h * outscale), round(w * outscale)) if outscale else (h * scale, w * scale)
    if min(size) < 1:
        raise inference.InferenceError(f"--outscale {outscale:g} leaves no pixels")
    sr = _resize(sr, size)
    if alpha is None:
        return _clip_in_bands(sr)
    # Alpha gets the same (MATLAB) bicubic as the colour of bicubic-like models, so that
    # colour / alpha stays the true colour along edges.
    big_alpha = inference.upsample_bicubic_strips(alpha, scale)
    big_alpha = _resize(big_alpha, size)
    out = tiling.frame((*size, sr.shape[2] + 1), fill_zero=False)  # disk-backed when large
    for r in range(0, size[0], BAND):
        a = np.clip(big_alpha[r : r + BAND], 0.0, 1.0)
        colour = sr[r : r + BAND]
        safe = np.maximum(a, 1e-6)[..., None]
        out[r : r + BAND, :, :-1] = np.clip(np.where(a[..., None] > 1 / 1024, colour / safe, colour), 0.0, 1.0)
        out[r : r + BAND, :, -1] = a
        for array in (out, sr, big_alpha):
            tiling.release(array, r, r + BAND)
    return out


def _clip_in_bands(image: np.ndarray) -> np.ndarray:
    """np.clip to [0, 1] in place, a band of rows at a time (a disk-backed frame stays on disk)."""
    for r in range(0, image.shape[0], BAND):
        block = image[r : r + BAND]
        np.clip(block, 0.0, 1.0, out=block)
        tiling.release(image, r, r + BAND)
    return image


def _quantise(image: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float [0, 1] to uint8/uint16, a block of rows at a time (large images stay in budget)."""
    convert, dtype = (to_uint16, np.uint16) if bit_depth == 16 else (to_uint8, np.uint8)
    out = np.empty(image.shape, dtype)
    for r in range(0, image.shape[0], BAND):
        out[r : r + BAND] = convert(image[r : r + BAND])
        tiling.release(image, r, r + BAND)
    return out


def process(src: Path, dst: Path, upscaler, args, progress=None, regular_only: bool = False
            ) -> tuple[tuple[int, int], tuple[int, int]]:
    """Upscale one file into `dst` (with its profile and metadata; hold `folder_run.claim(dst)`);
    returns the input's and the output's (width, height). Raises Failure."""
    max_pixels = getattr(args, "max_pixels", None)
    hint = getattr(args, "max_pixels_hint", "")
    try:
        loaded = load_image(src, to_srgb=getattr(args, "to_srgb", False), max_pixels=max_pixels,
                            regular_only=regular_only, hint=hint)
    except MemoryError:
        raise Failure(src, "out of memory while decoding (lower --max-pixels)") from None
    except ImageError as exc:
        raise Failure(src, _reason(exc, src)) from None
    try:
        result = upscale_loaded(loaded, upscaler, args.outscale, progress)
    except inference.InferenceError as exc:
        raise Failure(src, str(exc)) from None
    except MemoryError:
        raise Failure(src, "out of memory (try a smaller --tile)") from None
    suffix = dst.suffix.lower()
    if result.shape[2] in (2, 4) and suffix not in ALPHA_FORMATS:
        result = result[..., :-1]  # this format has no alpha channel
    depth = 16 if loaded.bit_depth == 16 and suffix in SIXTEEN_BIT_FORMATS else 8
    data = _quantise(result, depth)
    del result  # the float image is the largest buffer; free it before encoding
    height, width = data.shape[:2]
    info = photo_metadata.for_output(loaded.info, width, height, strip=getattr(args, "strip_metadata", False))
    try:
        encoded = photo_metadata.encode(suffix, data, info, quality=getattr(args, "quality", None) or 95)
        del data
        folder_run.publish(dst, encoded)
    except (ImageError, cv2.error, ValueError) as exc:
        raise Failure(dst, _reason(exc, dst)) from None
    except OSError as exc:
        raise Failure(dst, f"cannot write ({exc.strerror or exc})") from None
    return (loaded.colour.shape[1], loaded.colour.shape[0]), (width, height)


# --- the command ---------------------------------------------------------------------------------


def build_parser(chapter: registry.Chapter | None) -> argparse.ArgumentParser:
    """The command's flags; a chapter's command (`python -m <chapter>.upscale`) defaults to its
    shipped weights and scale."""
    prog = f"python -m {chapter.name}.upscale" if chapter else "python -m common.upscale_cli"
    default_scale = chapter.default_scale if chapter else None
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Super-resolve images with a trained model (tiled; large outputs are held on disk "
                    "while computed, and --max-pixels refuses images too large for memory).",
    )
    add = parser.add_argument
    add("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    add("-o", "--output", help="output file (one input) or folder; default: beside each input")
    add("--weights", help="checkpoint: X.h5, X.weights.h5 or X"
        + (" (default: this chapter's shipped weights)" if chapter else ""))
    add("--scale", type=int, help="model scale; picks the shipped weights"
        + (f" (default {default_scale})" if default_scale else "") + " and must match the checkpoint")
    add("--tile", type=int, help="tile side in input pixels; 0 = no tiling (default: from free memory)")
    add("--tile-overlap", type=int,
        help="context pixels per tile side (default: the model's receptive field, at most 16)")
    add("--batch-size", type=int, help="tiles per model call (default: 2, or 1 when tiles would be small)")
    add("--outscale", type=float, help="final enlargement if not the model's (resampled after the model)")
    add("--suffix", help="added to output file names (default _x<outscale>)")
    add("--ext", help="output format: png, jpg, webp, tif, bmp (default: the input's)")
    add("--precision", choices=PRECISIONS, default="float32", help=PRECISION_HELP)
    add("--backend", choices=backends.BACKENDS, default="auto",
        help="engine that runs the model: auto = openvino when installed, else tensorflow (the "
             "reference); openvino and onnxruntime run a copy converted once and cached beside the "
             "checkpoint (default auto)")
    add("--self-ensemble", action="store_true",
        help="average the model's results over the 8 flips/rotations of each image: 8x the time, "
             "usually slightly sharper and higher PSNR")
    add("--skip-existing", action="store_true",
        help="leave outputs that already exist alone (they are always complete: files are written "
             "atomically), so an interrupted folder run continues where it stopped")
    add("--manifest", metavar="FILE", help="append one JSON line per image to FILE: input, output, sizes, "
        "model, backend, seconds, status (ok/skipped/failed), error")
    add("--to-srgb", action="store_true",
        help="convert images with an embedded ICC profile to sRGB before upscaling and write sRGB "
             "(default: upscale in the image's own colour space and embed the same profile)")
    add("--strip-metadata", action="store_true",
        help="write no EXIF, XMP or PNG text (the colour profile is kept)")
    add("--quality", type=int, help="JPEG quality, 1-100 (default 95)")
    example = default_max_pixels(default_scale or 4)
    add("--max-pixels", type=_pixel_count, metavar="N",
        help="refuse an image with more pixels than N (read from its header before decoding; k/M/G "
             "suffixes, 0 = no limit); default: what fits in half the available memory at about "
             f"{BYTES_PER_OUTPUT_PIXEL} bytes per output pixel, here {example / 1e6:,.1f}M for a "
             f"x{default_scale or 4} model")
    add("-q", "--quiet", action="store_true", help="no progress bars or messages")
    return parser


def options_from(args) -> UpscaleOptions:
    return UpscaleOptions(backend=args.backend, precision=args.precision, tile=args.tile,
                          tile_overlap=args.tile_overlap, batch_size=args.batch_size,
                          self_ensemble=args.self_ensemble)


def _load_checkpoint(weights_arg, scale, options: UpscaleOptions, chapter: registry.Chapter | None) -> Upscaler:
    """The Upscaler of --weights (or the chapter's shipped weights) after checking what it holds."""
    shipped_weights = chapter.default_weights(scale) if chapter else None
    if weights_arg:
        weights, shipped = Path(weights_arg), False
    elif shipped_weights:
        weights, shipped = shipped_weights, True
        if weights.is_relative_to(Path.cwd()):  # shorter messages when run from the checkout
            weights = weights.relative_to(Path.cwd())
    else:
        raise Failure("--weights", "no checkpoint given")
    try:
        prepared = backends.prepare(weights, options.backend, Upscaler.resolve_precision(options.precision))
    except backends.BackendError as exc:  # --backend, or --precision int8 where it cannot run
        raise Failure(exc.option, _reason(exc, exc.option)) from None
    except backends.ModelLoadError as exc:
        reason = _reason(exc, weights)
        if shipped and "not found" in reason:
            reason += _shipped_hint(chapter, scale or chapter.default_scale)
        raise Failure(weights, reason) from None
    except inference.InferenceError as exc:
        raise Failure(weights, str(exc)) from None
    meta = prepared.meta
    architecture = meta.get("architecture")
    declared = registry.architecture(architecture) if isinstance(architecture, str) else None
    if declared is not None and declared.role == "discriminator":
        raise Failure(weights, f"holds a discriminator ({architecture}), not an upscaling model")
    allowed = chapter.generators if chapter else ()
    if allowed and architecture and architecture not in allowed:
        home = registry.chapter_of(architecture)
        hint = home.name if home and architecture in home.generators else None
        raise Failure(weights, f"holds a different architecture: {architecture!r}, but {chapter.name}.upscale "
                      f"runs {'/'.join(allowed)}" + (f" (use python -m {hint}.upscale)" if hint else ""))
    try:
        upscaler = Upscaler.from_options(prepared, options, scale=scale)  # scale: a bare .h5 without JSON
    except inference.InferenceError as exc:
        raise Failure(weights, str(exc)) from None
    if scale and scale != upscaler.scale:
        raise Failure(weights, f"is a x{upscaler.scale} model, not x{scale}")
    return upscaler


def _plan(args, scale: int, walked: set | None = None, walk_skips: list | None = None) -> tuple[list[tuple[Path, Path]], list[Failure], bool]:
    """(source, destination) pairs, failures found while listing, and whether it is one file.

    Files found in folders are added to `walked` (only regular files are read from them); other
    entries with an image name (links in a loop, devices, pipes) are skipped with one line each
    and added to `walk_skips` as (path, reason)."""
    sources, failures, single = [], [], len(args.inputs) == 1
    for item in args.inputs:
        path = Path(item)
        if path.is_dir():
            single = False
            skipped: list = []
            found = list_images(path, skipped)
            for entry, reason in skipped:  # shown even with -q: the user expected these done
                _note(f"skipped: {entry}: {reason}")
            if walk_skips is not None:
                walk_skips.extend(skipped)
            if not found:
                failures.append(Failure(path, "no images in this folder"))
            sources.extend(found)
            if walked is not None:
                walked.update(found)
        elif path.exists():
            sources.append(path)
        else:
            failures.append(Failure(path, "no such file or folder"))

    ext = None
    if args.ext:
        ext = "." + args.ext.lower().lstrip(".")
        if ext not in IMAGE_EXTENSIONS:
            raise Failure("--ext", f"unknown format {args.ext!r} (choose from {', '.join(IMAGE_EXTENSIONS)})")
    outscale = args.outscale or scale
    suffix = args.suffix if args.suffix is not None else f"_x{outscale:g}"
    out = Path(args.output) if args.output else None
    to_file = out is not None and not out.is_dir() and out.suffix.lower() in IMAGE_EXTENSIONS
    if to_file and not (single and len(sources) == 1):
        raise Failure(out, "must be a folder when upscaling several images")
    if out is not None and not to_file:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Failure(out, f"cannot create the output folder ({exc.strerror or exc})") from None

    jobs, taken = [], {}
    for src in sources:
        if to_file:
            dst = out
        else:
            dst = (out or src.parent) / f"{src.stem}{suffix}{ext or src.suffix}"
        try:
            key, same = dst.resolve(), dst.resolve() == src.resolve()
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
            failures.append(Failure(src, f"the input or its output {dst} is a symlink loop"))
            continue
        if same:
            failures.append(Failure(src, f"the output {dst} would overwrite the input (use --suffix or -o)"))
        elif key in taken:
            failures.append(Failure(src, f"same output name {dst} as {taken[key]}"))
        else:
            taken[key] = src
            jobs.append((src, dst))
    return jobs, failures, single and len(sources) <= 1


def main(argv=None, chapter: "registry.Chapter | str | None" = None) -> int:
    """Run the command; returns the exit code (0 ok, 1 some files failed, 2 error, 130 Ctrl-C).
    `chapter` (a registered chapter or its name) gives the defaults of `python -m <chapter>.upscale`."""
    if isinstance(chapter, str):
        chapter = registry.chapter(chapter)
    args = build_parser(chapter).parse_args(argv)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    quiet = args.quiet
    try:
        _check_options(args)
        upscaler = _load_checkpoint(args.weights, args.scale, options_from(args), chapter)
        if not quiet:
            if args.precision != "float32":
                print(upscaler.precision_note, file=sys.stderr)
            print(upscaler.description, file=sys.stderr)
        if args.max_pixels is None:
            args.max_pixels = default_max_pixels(upscaler.scale, args.self_ensemble)
            args.max_pixels_hint = (" (the default for a x{} model in the available memory; give a larger "
                                    "--max-pixels, or 0 for no limit)").format(upscaler.scale)
        walked: set = set()
        walk_skips: list = []
        jobs, failures, single = _plan(args, upscaler.scale, walked, walk_skips)
    except Failure as failure:
        _say(failure)
        return EXIT_ERROR

    def work(src, dst, progress):  # the one call per image: read, upscale, write
        return process(src, dst, upscaler, args, progress, regular_only=src in walked)

    described = {"model": upscaler.meta.get("architecture"), "scale": upscaler.scale,
                 "backend": upscaler.backend}
    return _run_jobs(jobs, failures, single, work, skip_existing=args.skip_existing,
                     manifest=args.manifest, quiet=quiet, unit="pass" if args.self_ensemble else "tile",
                     described=described, walk_skips=walk_skips)


def _check_options(args) -> None:
    """Values argparse accepts but a run cannot use: say what was given and what is allowed."""
    if args.tile is not None and args.tile < 0:
        raise Failure("--tile", f"{args.tile} is not a tile size: give 0 (the whole image at once) or a "
                      "tile side in input pixels, e.g. --tile 256")
    if args.scale is not None and args.scale < 1:
        raise Failure("--scale", f"{args.scale} is not a scale: give the model's factor, e.g. --scale 3")
    quality = getattr(args, "quality", None)
    if quality is not None and not 1 <= quality <= 100:
        raise Failure("--quality", f"{quality} is out of range: JPEG quality is 1 to 100 (default 95)")


def _shipped_hint(chapter: registry.Chapter, scale) -> str:
    """' (--scale 5 given; shipped: x2, x3, x4; ...)' for a chapter's missing shipped weights."""
    scales = set()
    for pattern in map(Path, chapter.shipped_weights):
        prefix, _, suffix = pattern.name.partition("{scale}")
        scales.update(int(p.name[len(prefix) : len(p.name) - len(suffix)])
                      for p in pattern.parent.glob(f"{prefix}*{suffix}")
                      if p.name[len(prefix) : len(p.name) - len(suffix)].isdigit())
    scales = sorted(scales)
    shipped = ", ".join(f"x{s}" for s in scales) or "none"
    return f" (--scale {scale} given; shipped weights: {shipped}; train x{scale} or pass --weights FILE)"


def _say(failure: Failure) -> None:
    _note(f"error: {failure.subject}: {failure.reason}")


def _note(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


def _run_jobs(jobs, failures, single, work, skip_existing=False, manifest=None, quiet=False,
              unit="tile", described=None, walk_skips=()) -> int:
    """Run `work(src, dst, progress)` for each job under the output's lock; skip complete outputs
    with `skip_existing`; log to the manifest; the first Ctrl-C stops after the current image.
    Returns the exit code."""
    from tqdm import tqdm

    show_bars = not quiet and sys.stderr.isatty()
    try:
        log = folder_run.open_manifest(manifest, **(described or {}))
    except OSError as exc:
        _say(Failure(manifest, f"cannot write the manifest ({exc.strerror or exc})"))
        return EXIT_ERROR
    for entry, reason in walk_skips:  # already said while listing the folder
        log.record(entry, None, "skipped", error=reason)
    for failure in failures:
        _say(failure)
        log.record(failure.subject, None, "failed", error=failure.reason)
    failures, planned = list(failures), len(failures)
    done = skipped = 0
    files = tqdm(jobs, desc="images", unit="img", disable=not show_bars or len(jobs) < 2)
    with folder_run.StopAfterCurrent() as stop:
        try:
            for src, dst in files:
                if stop.requested:
                    break
                bar = tqdm(desc=src.name, unit=unit, leave=False, disable=not show_bars)

                def progress(n, total, bar=bar):
                    bar.total = total
                    bar.update(n - bar.n)

                started, sizes, skip_reason = time.perf_counter(), None, None
                try:
                    with folder_run.claim(dst):
                        if skip_existing and folder_run.is_complete(dst):
                            skip_reason = "exists"
                        else:
                            sizes = work(src, dst, progress)
                except folder_run.Busy as exc:  # another process is writing this output now
                    if skip_existing:
                        skip_reason = str(exc)
                    else:
                        failure = Failure(dst, str(exc))
                except OSError as exc:  # the lock file: e.g. a missing or read-only folder
                    failure = Failure(dst, f"cannot write ({exc.strerror or exc})")
                except Failure as exc:
                    failure = exc
                except MemoryError:
                    failure = Failure(src, "out of memory (lower --max-pixels or --tile)")
                except Exception as exc:  # noqa: BLE001  (one bad file must not end a folder run)
                    failure = Failure(src, f"{type(exc).__name__}: {_reason(exc, src)}")
                finally:
                    bar.close()
                seconds = time.perf_counter() - started
                if skip_reason:
                    skipped += 1
                    log.record(src, dst, "skipped", seconds=seconds, error=skip_reason)
                    if not quiet:
                        tqdm.write(f"{src} -> {dst} skipped ({skip_reason})")
                elif sizes:
                    done += 1
                    log.record(src, dst, "ok", *sizes, seconds=seconds)
                    if not quiet:
                        tqdm.write(f"{src} -> {dst} ({sizes[1][0]}x{sizes[1][1]})")
                else:
                    failures.append(failure)
                    _say(failure)
                    log.record(src, dst, "failed", seconds=seconds, error=failure.reason)
        except KeyboardInterrupt:  # a second Ctrl-C: the current image is abandoned, nothing partial
            stop.requested = True
    log.close()

    if stop.requested:
        left = len(jobs) - done - skipped - (len(failures) - planned)
        print(f"interrupted: {done} done, {skipped} skipped, {len(failures)} failed, {left} not done; "
              "run the same command with --skip-existing to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not failures:
        return EXIT_OK
    if single:
        return EXIT_ERROR
    total = done + skipped + len(failures)
    lines = [f"{len(failures)} of {total} images failed:"] + [f"  {f.subject}: {f.reason}" for f in failures]
    print("\n".join(lines), file=sys.stderr)
    return EXIT_SOME_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
