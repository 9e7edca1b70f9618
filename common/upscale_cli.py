"""The upscale command every chapter shares (`python -m srcnn.upscale`, `srgan.upscale`, ...).

    python -m srcnn.upscale photo.jpg -o photo_x3.png
    python -m esrgan.upscale holiday/ -o holiday_x4/ --ext png
    python -m common.upscale_cli in.png -o out.png --weights my_model.h5

Keeps the input's bit depth (8/16), grey stays grey, alpha is kept (colour is premultiplied while
upscaling so edges do not darken), EXIF orientation is applied. Every output file is written
atomically. A failure prints one line `error: <file>: <reason>`; with several inputs the others are
still done and a summary follows (exit 1); a single failing input or a bad checkpoint exits 2.
"""
import common  # noqa: F401  (quiet TensorFlow import)

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from common import checkpoints, inference
from common.images import (
    IMAGE_EXTENSIONS,
    ImageError,
    decode_image,
    list_images,
    to_uint8,
    to_uint16,
    write_image,
)
from common.precision import PRECISIONS, resolve_precision

EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR = 0, 1, 2
CHAPTER_ARCHITECTURES = {"srcnn": ("srcnn",), "srgan": ("srresnet",), "esrgan": ("rrdb_generator",)}
CHAPTER_OF = {arch: chapter for chapter, archs in CHAPTER_ARCHITECTURES.items() for arch in archs}
DISCRIMINATORS = ("srgan_discriminator", "esrgan_discriminator")
SIXTEEN_BIT_FORMATS = (".png", ".tif", ".tiff")
ALPHA_FORMATS = (".png", ".tif", ".tiff", ".webp")
EXIF_ORIENTATION = 0x0112


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
    """An input image: colour float32 (H, W, 3) RGB or (H, W, 1) grey in [0, 1], alpha or None."""

    def __init__(self, colour, alpha, bit_depth):
        self.colour, self.alpha, self.bit_depth = colour, alpha, bit_depth


def load_image(path) -> Loaded:
    raw = decode_image(path)  # BGR(A) or grey, as stored; raises ImageError
    if raw.dtype == np.uint8:
        depth, peak = 8, 255.0
    elif raw.dtype == np.uint16:
        depth, peak = 16, 65535.0
    else:
        raise ImageError(f"{path}: unsupported sample type {raw.dtype} (8- or 16-bit images only)")
    raw = apply_orientation(raw, exif_orientation(path))
    if raw.ndim == 2:
        raw = raw[..., None]
    image = raw.astype(np.float32) / peak
    channels = image.shape[2]
    if channels == 1:
        return Loaded(image, None, depth)
    if channels == 2:  # grey + alpha
        return Loaded(image[..., :1].copy(), image[..., 1].copy(), depth)
    colour = np.ascontiguousarray(image[..., 2::-1])  # BGR -> RGB
    alpha = image[..., 3].copy() if channels == 4 else None
    return Loaded(colour, alpha, depth)


# --- one image -----------------------------------------------------------------------------------


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W[, C]) to (h, w): INTER_AREA when shrinking, bicubic when enlarging."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    shrink = h * w < image.shape[0] * image.shape[1]
    out = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return out.reshape(h, w, *image.shape[2:])


def upscale_loaded(loaded: Loaded, model, meta, outscale=None, tile=None, tile_overlap=None,
                   batch_size=None, progress=None, precision=None, self_ensemble=False):
    """Upscale colour (and alpha); returns float32 (H', W', C[+1]) in [0, 1]."""
    colour, alpha = loaded.colour, loaded.alpha
    if alpha is not None:
        colour = colour * alpha[..., None]  # premultiply: transparent pixels carry no colour
    sr = inference.upscale(colour, model, meta, tile=tile, tile_overlap=tile_overlap,
                           batch_size=batch_size, progress=progress, precision=precision,
                           self_ensemble=self_ensemble)
    h, w = colour.shape[:2]
    scale = sr.shape[0] // h
    size = (round(h * outscale), round(w * outscale)) if outscale else (h * scale, w * scale)
    if min(size) < 1:
        raise inference.InferenceError(f"--outscale {outscale:g} leaves no pixels")
    sr = _resize(sr, size)
    if alpha is None:
        return np.clip(sr, 0.0, 1.0, out=sr)
    # Alpha gets the same (MATLAB) bicubic as the colour of bicubic-like models, so that
    # colour / alpha stays the true colour along edges.
    big_alpha = inference.upsample_bicubic_strips(alpha, scale)
    big_alpha = np.clip(_resize(big_alpha, size), 0.0, 1.0)
    safe = np.maximum(big_alpha, 1e-6)[..., None]
    sr = np.where(big_alpha[..., None] > 1 / 1024, sr / safe, sr)
    np.clip(sr, 0.0, 1.0, out=sr)
    return np.concatenate([sr, big_alpha[..., None]], axis=2)


def _quantise(image: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float [0, 1] to uint8/uint16, a block of rows at a time (large images stay in budget)."""
    convert, dtype = (to_uint16, np.uint16) if bit_depth == 16 else (to_uint8, np.uint8)
    out = np.empty(image.shape, dtype)
    for r in range(0, image.shape[0], 512):
        out[r : r + 512] = convert(image[r : r + 512])
    return out


def process(src: Path, dst: Path, model, meta, args, progress=None) -> tuple[int, int]:
    """Upscale one file into `dst`; returns the output (width, height). Raises Failure."""
    try:
        loaded = load_image(src)
    except ImageError as exc:
        raise Failure(src, _reason(exc, src)) from None
    try:
        result = upscale_loaded(loaded, model, meta, outscale=args.outscale, tile=args.tile,
                                tile_overlap=args.tile_overlap, batch_size=args.batch_size,
                                progress=progress, precision=getattr(args, "precision", None),
                                self_ensemble=getattr(args, "self_ensemble", False))
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
    try:
        write_image(dst, data)
    except (ImageError, cv2.error) as exc:
        raise Failure(dst, _reason(exc, dst)) from None
    return data.shape[1], data.shape[0]


# --- the command ---------------------------------------------------------------------------------


def build_parser(chapter: str | None, default_scale: int | None) -> argparse.ArgumentParser:
    prog = f"python -m {chapter}.upscale" if chapter else "python -m common.upscale_cli"
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Super-resolve images with a trained model (tiled, so any size fits in memory).",
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
    add("--precision", choices=PRECISIONS, default="float32",
        help="compute precision: bfloat16 is about twice as fast on CPUs with AVX512-BF16/AMX and on "
             "recent GPUs, emulated (slow) elsewhere; auto picks it only where native (default float32)")
    add("--self-ensemble", action="store_true",
        help="average the model's results over the 8 flips/rotations of each image: 8x the time, "
             "usually slightly sharper and higher PSNR")
    add("-q", "--quiet", action="store_true", help="no progress bars or messages")
    return parser


def _load_checkpoint(args, chapter, default_weights, default_scale):
    if args.weights:
        weights, shipped = Path(args.weights), False
    elif default_weights:
        weights = Path(str(default_weights).format(scale=args.scale or default_scale))
        shipped = True
        if weights.is_relative_to(Path.cwd()):  # shorter messages when run from the checkout
            weights = weights.relative_to(Path.cwd())
    else:
        raise Failure("--weights", "no checkpoint given")
    try:
        model, meta = checkpoints.load_model(weights)
    except checkpoints.CheckpointError as exc:
        reason = _reason(exc, weights)
        if shipped and "not found" in reason:
            reason += " (these weights are not shipped yet; train them or pass --weights FILE)"
        raise Failure(weights, reason) from None
    architecture = meta.get("architecture")
    if architecture in DISCRIMINATORS:
        raise Failure(weights, f"holds a discriminator ({architecture}), not an upscaling model")
    allowed = CHAPTER_ARCHITECTURES.get(chapter or "")
    if allowed and architecture and architecture not in allowed:
        hint = CHAPTER_OF.get(architecture)
        raise Failure(weights, f"holds a different architecture: {architecture!r}, but {chapter}.upscale "
                      f"runs {'/'.join(allowed)}" + (f" (use python -m {hint}.upscale)" if hint else ""))
    if args.scale and meta.get("scale") is None:  # e.g. a bare .h5 without its JSON
        meta = {**meta, "scale": args.scale}
    try:
        spec = inference.model_spec(model, meta)
    except inference.InferenceError as exc:
        raise Failure(weights, str(exc)) from None
    if args.scale and args.scale != spec.scale:
        raise Failure(weights, f"is a x{spec.scale} model, not x{args.scale}")
    return model, meta, spec


def _plan(args, scale: int) -> tuple[list[tuple[Path, Path]], list[Failure], bool]:
    """(source, destination) pairs, failures found while listing, and whether it is one file."""
    sources, failures, single = [], [], len(args.inputs) == 1
    for item in args.inputs:
        path = Path(item)
        if path.is_dir():
            single = False
            found = list_images(path)
            if not found:
                failures.append(Failure(path, "no images in this folder"))
            sources.extend(found)
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
        key = dst.resolve()
        if key == src.resolve():
            failures.append(Failure(src, f"the output {dst} would overwrite the input (use --suffix or -o)"))
        elif key in taken:
            failures.append(Failure(src, f"same output name {dst} as {taken[key]}"))
        else:
            taken[key] = src
            jobs.append((src, dst))
    return jobs, failures, single and len(sources) <= 1


def main(argv=None, chapter: str | None = None, default_weights=None,
         default_scale: int | None = None) -> int:
    """Run the command; returns the exit code (0 ok, 1 some files failed, 2 error)."""
    args = build_parser(chapter, default_scale).parse_args(argv)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    from tqdm import tqdm

    quiet = args.quiet
    show_bars = not quiet and sys.stderr.isatty()

    def say_error(failure: Failure):
        tqdm.write(f"error: {failure.subject}: {failure.reason}", file=sys.stderr)

    try:
        from common.runtime import setup_devices

        setup_devices()
        requested = args.precision
        args.precision, reason = resolve_precision(requested)
        if requested != "float32" and not quiet:
            print(reason, file=sys.stderr)
        model, meta, spec = _load_checkpoint(args, chapter, default_weights, default_scale)
        jobs, failures, single = _plan(args, spec.scale)
    except Failure as failure:
        say_error(failure)
        return EXIT_ERROR
    for failure in failures:
        say_error(failure)

    files = tqdm(jobs, desc="images", unit="img", disable=not show_bars or len(jobs) < 2)
    done = 0
    for src, dst in files:
        bar = tqdm(desc=src.name, unit="pass" if args.self_ensemble else "tile", leave=False,
                   disable=not show_bars)

        def progress(n, total, bar=bar):
            bar.total = total
            bar.update(n - bar.n)

        try:
            width, height = process(src, dst, model, meta, args, progress)
        except Failure as failure:
            failures.append(failure)
            say_error(failure)
            continue
        finally:
            bar.close()
        done += 1
        if not quiet:
            tqdm.write(f"{src} -> {dst} ({width}x{height})")

    if not failures:
        return EXIT_OK
    if single:
        return EXIT_ERROR
    total = done + len(failures)
    lines = [f"{len(failures)} of {total} images failed:"] + [f"  {f.subject}: {f.reason}" for f in failures]
    print("\n".join(lines), file=sys.stderr)
    return EXIT_SOME_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
