"""Tiled super-resolution of one image with any model runner (numpy in, numpy out).

The image is cut into overlapping tiles (in LR pixels). Each tile carries `margin` pixels of context
on every side facing another tile; those pixels get weight 0 and the next `ramp` pixels a linear
ramp, then the tiles are blended as a weighted average. When the margin covers the model's
receptive field the tiled result equals the untiled one; for deep generators, whose theoretical
receptive field is hundreds of pixels, the margin is capped (model_analysis.DEFAULT_MARGIN) and the
ramp hides what little difference remains. Tiles all have one size and go to the model in small
batches; only one batch at a time is handed to the runner. Also here: the geometric self-ensemble.

Memory: an output of more than DISK_FRAME_BYTES is a disk-backed array (an mmap of an unlinked
temporary file in $TMPDIR, its space reserved up front); each band of output rows is normalised as
soon as the last tile touching it is done, and its pages are then handed back to the kernel
(`release`), so the process holds about one row of tiles of the output rather than the whole frame.
"""
import math
import mmap
import os
import tempfile
from pathlib import Path

import numpy as np

from common.degradations import imresize
from common.images import rgb_to_ycbcr, ycbcr_to_rgb
from common.model_analysis import BICUBIC_CONTEXT, InferenceError, Spec

MIN_TILE, MAX_TILE = 32, 1024
MEMORY_FRACTION = 0.25  # of the available memory, for one batch of tiles
MAX_BUDGET = 768 << 20  # bytes of activations for one batch of tiles
BATCH_MIN_TILE = 256  # batch two tiles only if tiles can still be this large
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601; inverts grey -> (g, g, g)
DISK_FRAME_BYTES = 256 << 20  # outputs larger than this live in a temporary file, not in memory


# --- memory and tile layout -----------------------------------------------------------------------


def available_memory() -> int:
    """Bytes of memory available: /proc/meminfo MemAvailable, limited by a cgroup limit if any."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = 2 << 30
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < (1 << 60):
            available = min(available, max(int(limit) - usage, 0))
        break
    return available


def auto_tile_size(spec: Spec, batch_size: int, margin: int, ramp: int) -> int:
    """The largest tile (LR px) whose batch fits in a share of the available memory."""
    budget = min(MEMORY_FRACTION * available_memory(), MAX_BUDGET)
    side = int(math.sqrt(budget / (batch_size * spec.bytes_per_lr_pixel))) // 8 * 8
    smallest = max(MIN_TILE, 2 * (2 * margin + ramp))
    return int(min(max(side, smallest), MAX_TILE))


def choose_tiling(spec: Spec, size, tile=None, tile_overlap=None, batch_size=None):
    """(tile, batch_size, margin, ramp) for an image of `size` (H, W); see tiled_upscale()."""
    margin = spec.margin if tile_overlap is None else int(tile_overlap)
    if margin < 0:
        raise InferenceError("tile overlap must be >= 0")
    ramp = max(1, margin // 2)
    if tile is None:
        if batch_size is None:  # two tiles per call if tiles stay large, else one larger tile
            batch_size = 2 if auto_tile_size(spec, 2, margin, ramp) >= BATCH_MIN_TILE else 1
        tile = auto_tile_size(spec, batch_size, margin, ramp)
    elif tile == 0:
        tile = max(size)
    m = spec.multiple
    tile = max(m, tile // m * m)
    if tile - 2 * margin - ramp < m and tile < max(size):
        raise InferenceError(
            f"tile {tile} is too small for an overlap of {margin} px: use at least {2 * margin + ramp + m}"
        )
    return int(tile), int(batch_size or 2), margin, ramp


def _positions(length: int, tile: int, margin: int, ramp: int, multiple: int = 1) -> list[int]:
    """Tile starts, evenly spread, multiples of `multiple`, at most tile - 2*margin - ramp apart."""
    if tile >= length:
        return [0]
    stride = (tile - 2 * margin - ramp) // multiple
    span = (length - tile) // multiple
    n = math.ceil(span / stride) + 1
    return [multiple * round(i * span / (n - 1)) for i in range(n)]


def _profile(start: int, tile: int, length: int, margin: int, ramp: int, scale: int) -> np.ndarray:
    """Blending weights (output px) of one tile along one axis."""
    t = np.arange(tile * scale, dtype=np.float64)
    m, b = margin * scale, ramp * scale
    weight = np.ones_like(t)
    if start > 0:
        weight = np.minimum(weight, np.clip((t - m + 1) / (b + 1), 0, 1))
    if start + tile < length:
        weight = np.minimum(weight, np.clip((t[::-1] - m + 1) / (b + 1), 0, 1))
    return weight


def upsample_bicubic_strips(image: np.ndarray, scale: int, rows: int = 64) -> np.ndarray:
    """MATLAB bicubic upscaling by an integer factor, a strip of rows at a time (float32).

    Same result as common.degradations.upsample_bicubic, with far less temporary memory.
    """
    h = image.shape[0]
    out = frame((h * scale, image.shape[1] * scale) + image.shape[2:], fill_zero=False)
    context = BICUBIC_CONTEXT
    for r0 in range(0, h, rows):
        r1 = min(r0 + rows, h)
        a, b = max(r0 - context, 0), min(r1 + context, h)
        strip = imresize(image[a:b], float(scale))
        out[r0 * scale : r1 * scale] = strip[(r0 - a) * scale : (r1 - a) * scale]
        release(out, r0 * scale, r1 * scale)
    return out


# --- output frames: in memory, or disk-backed when large ----------------------------------------------


def frame(shape, dtype=np.float32, fill_zero: bool = True) -> np.ndarray:
    """A new array of `shape`: in memory when small; when over DISK_FRAME_BYTES an mmap of an
    unlinked temporary file (nothing is left on disk even after kill -9), zero-filled either way.
    Raises InferenceError when the temporary folder has no room for it."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if nbytes <= DISK_FRAME_BYTES:
        return np.zeros(shape, dtype) if fill_zero else np.empty(shape, dtype)
    with tempfile.TemporaryFile(prefix="sr-frame-") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, nbytes)  # no SIGBUS later from a full disk
        except OSError as exc:
            raise InferenceError(f"no room for a {nbytes / 2**30:.1f} GiB output frame in "
                                 f"{tempfile.gettempdir()} ({exc.strerror or exc}; set TMPDIR)") from None
        buffer = mmap.mmap(f.fileno(), nbytes)  # keeps its own reference to the file
    return np.frombuffer(buffer, dtype).reshape(shape)


def _mapping(array: np.ndarray):
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return base


def is_disk_backed(array) -> bool:
    return isinstance(array, np.ndarray) and _mapping(array) is not None


def release(array: np.ndarray, start: int = 0, stop: int | None = None) -> None:
    """Give back the memory of rows start:stop of a disk-backed array (frame()); the data stays in
    its file and is read back when touched again. Does nothing for an in-memory array. A view that
    is not row-major (a rotation) gives back its whole file."""
    buffer = _mapping(array)
    if buffer is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    if array.ndim < 2 or abs(array.strides[0]) < abs(array.strides[1]):
        buffer.madvise(mmap.MADV_DONTNEED)
        return
    stop = array.shape[0] if stop is None else min(stop, array.shape[0])
    if stop <= start or array.size == 0:
        return
    origin = np.frombuffer(buffer, np.uint8, count=1).ctypes.data
    first = array[start].ctypes.data - origin
    last = array[stop - 1].ctypes.data - origin + array[stop - 1].nbytes  # rows may be strided views
    page = mmap.PAGESIZE
    begin, end = -(-min(first, last) // page) * page, max(first, last) // page * page  # whole pages inside
    if end > begin:
        buffer.madvise(mmap.MADV_DONTNEED, begin, end - begin)


# --- the model on a batch of tiles ------------------------------------------------------------------


def _bicubic(batch: np.ndarray, scale: int) -> np.ndarray:
    return np.stack([imresize(t, float(scale)) for t in batch]).astype(np.float32)


def run_tiles(lr: np.ndarray, run_model, spec: Spec) -> np.ndarray:
    """(N, h, w, C) LR tiles in [0, 1] -> (N, h*s, w*s, C) SR tiles in [0, 1].

    run_model: float32 NHWC batch in the model's input range -> float32 batch in its output range.
    """
    grey = lr.shape[-1] == 1
    x = np.repeat(lr, 3, axis=-1) if grey else lr
    chroma = None
    if spec.color == "y":
        ycc = rgb_to_ycbcr(x)
        x, chroma = ycc[..., :1], _bicubic(ycc[..., 1:], spec.scale)
    if spec.pre:
        x = _bicubic(x, spec.scale)
    lo, hi = spec.input_range
    x = x * (hi - lo) + lo
    if spec.pad:
        p = spec.pad
        x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
    y = np.asarray(run_model(np.ascontiguousarray(x, dtype=np.float32)), np.float32)
    if spec.out_crop:
        c = spec.out_crop
        y = y[:, c:-c, c:-c]
    expected = (lr.shape[1] * spec.scale, lr.shape[2] * spec.scale)
    if y.shape[1:3] != expected:
        raise InferenceError(
            f"the model made {y.shape[1:3]} pixels from {lr.shape[1:3]}, expected {expected}"
        )
    lo, hi = spec.output_range
    y = (y - lo) / (hi - lo)
    if chroma is not None:
        y = ycbcr_to_rgb(np.concatenate([y, chroma], axis=-1))
    y = np.clip(y, 0.0, 1.0).astype(np.float32, copy=False)
    if grey:
        y = (y @ LUMA)[..., None]
    return y.astype(np.float32, copy=False)


def tiled_upscale(image: np.ndarray, run_model, spec: Spec, tile=None, tile_overlap=None, batch_size=None,
                  progress=None) -> np.ndarray:
    """Float32 (H, W, C) image in [0, 1] (C = 1 or 3) -> (H*s, W*s, C) in [0, 1], tile by tile.

    tile: LR tile side in pixels; None chooses it from the available memory, 0 disables tiling.
    tile_overlap: LR pixels of context per tile side (default: the model's receptive field, capped).
    batch_size: tiles per model call (default 2, or 1 when memory allows only small tiles).
    progress: optional callable(done_tiles, total_tiles).
    """
    h, w = image.shape[:2]
    if min(h, w) < spec.min_size:
        raise InferenceError(
            f"image is {w}x{h} pixels; this model needs at least {spec.min_size}x{spec.min_size}"
        )
    s, m = spec.scale, spec.multiple
    full_h, full_w = h, w
    if (h % m or w % m) and m > 1:  # models that downsample inside need multiples of m
        image = np.pad(image, ((0, -h % m), (0, -w % m), (0, 0)), mode="symmetric")
        h, w = image.shape[:2]
    tile, batch_size, margin, ramp = choose_tiling(spec, (h, w), tile, tile_overlap, batch_size)
    th, tw = min(tile, h), min(tile, w)
    if min(th, tw) < spec.min_size:  # a thin image: tiles along its short side are the whole side
        raise InferenceError(f"tile {tile} is smaller than the {spec.min_size} px this model needs")
    rows, cols = _positions(h, th, margin, ramp, m), _positions(w, tw, margin, ramp, m)
    row_w = [_profile(y, th, h, margin, ramp, s) for y in rows]
    col_w = [_profile(x, tw, w, margin, ramp, s) for x in cols]

    # The weights are separable, so their sum is an outer product of two 1-D sums.
    sum_y, sum_x = np.zeros(h * s), np.zeros(w * s)
    for y, weight in zip(rows, row_w):
        sum_y[y * s : y * s + th * s] += weight
    for x, weight in zip(cols, col_w):
        sum_x[x * s : x * s + tw * s] += weight
    assert sum_y.min() > 0 and sum_x.min() > 0, "tiles do not cover the image"
    inv_x = (1.0 / sum_x).astype(np.float32)

    out = frame((h * s, w * s, image.shape[2]))
    finished = 0  # output rows above this are final: normalised, clipped (and released if on disk)

    def finish(stop):
        nonlocal finished
        for r in range(finished, stop, 256):
            block = out[r : min(r + 256, stop)]
            block *= ((1.0 / sum_y[r : r + len(block)]).astype(np.float32)[:, None] * inv_x[None, :])[..., None]
            np.clip(block, 0.0, 1.0, out=block)
        release(out, finished, stop)
        finished = stop

    tiles = [(i, j) for i in range(len(rows)) for j in range(len(cols))]
    for start in range(0, len(tiles), batch_size):
        chunk = tiles[start : start + batch_size]
        lr = np.stack([image[rows[i] : rows[i] + th, cols[j] : cols[j] + tw] for i, j in chunk])
        sr = run_tiles(lr, run_model, spec)
        for (i, j), tile_sr in zip(chunk, sr):
            y0, x0 = rows[i] * s, cols[j] * s
            weight = np.outer(row_w[i], col_w[j]).astype(np.float32)[..., None]
            out[y0 : y0 + th * s, x0 : x0 + tw * s] += tile_sr * weight
        i, j = chunk[-1]
        done_rows = i + 1 if j == len(cols) - 1 else i  # tile rows complete so far
        if done_rows < len(rows):  # rows above the next tile row's first are final
            finish(max(finished, rows[done_rows] * s))
        if progress is not None:
            progress(min(start + batch_size, len(tiles)), len(tiles))
    finish(h * s)
    return out[: full_h * s, : full_w * s]


# --- geometric self-ensemble ---------------------------------------------------------------------------


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """The k-th (0-7) of the 8 flips/rotations of an (H, W, ...) array: k % 4 quarter turns, then a
    left-right flip if k >= 4."""
    out = np.rot90(image, k % 4, axes=(0, 1))
    return out[:, ::-1] if k >= 4 else out


def undo_dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """Inverse of dihedral(., k)."""
    out = image[:, ::-1] if k >= 4 else image
    return np.rot90(out, -(k % 4), axes=(0, 1))


def geometric_self_ensemble(fn, image: np.ndarray, progress=None) -> np.ndarray:
    """Mean of fn over the 8 flips/rotations of `image`, each output turned back (the geometric
    self-ensemble of Lim et al. 2017, "EDSR+"); fn maps (H, W, C) to (H*s, W*s, C).

    progress: optional callable(done, total) for the 8 passes.
    """
    total = None
    for k in range(8):
        out = undo_dihedral(fn(np.ascontiguousarray(dihedral(image, k))), k)
        if total is None:
            total = frame(out.shape, fill_zero=False)
        for r in range(0, out.shape[0], 256):  # in bands: a disk-backed sum stays out of memory
            if k == 0:
                total[r : r + 256] = out[r : r + 256]
            else:
                total[r : r + 256] += out[r : r + 256]
            release(total, r, r + 256)
            release(out, r, r + 256)
        del out
        if progress is not None:
            progress(k + 1, 8)
    for r in range(0, total.shape[0], 256):
        total[r : r + 256] /= np.float32(8)
        release(total, r, r + 256)
    return total
