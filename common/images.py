"""Image I/O and colour conversions.

Images live in memory as float32 arrays in [0, 1], RGB, shape (H, W, 3) (or (H, W, 1) for grey).
YCbCr follows ITU-R BT.601 with MATLAB's `rgb2ycbcr` convention: Y in [16, 235]/255,
Cb and Cr in [16, 240]/255.
"""
import errno
import io
import os
import stat
from pathlib import Path

import cv2
import numpy as np

from common.files import atomic_write_bytes  # write_image writes through it: no partial file is left

IMAGE_EXTENSIONS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
# A file larger than this is refused before it is read (a 16-bit RGBA BMP of 128 Mpx is 1 GiB).
MAX_FILE_BYTES = 1 << 30

# Rows give Y, Cb, Cr from R, G, B in [0, 1]; results in [0, 255] before the offset.
_RGB_TO_YCBCR = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]
)
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])


class ImageError(ValueError):
    """An image file that cannot be read or written; the message names the file."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def list_images(folder, skipped: list | None = None) -> list[Path]:
    """The regular files with an image suffix in `folder` (links to regular files count), sorted.

    Other entries with an image suffix (symlink loops, dangling links, devices, named pipes,
    folders) are left out; each is appended to `skipped` as (path, reason) when a list is given.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: not a folder")
    found = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        try:
            mode = p.stat().st_mode  # follows links: a loop or a dangling link raises
        except OSError as exc:
            reason = "symlink loop" if exc.errno == errno.ELOOP else f"cannot read ({exc.strerror or exc})"
            if skipped is not None:
                skipped.append((p, reason))
            continue
        if stat.S_ISREG(mode):
            found.append(p)
        elif skipped is not None:
            skipped.append((p, f"{_kind(mode)}, not a regular file"))
    return found


def read_file(path, max_bytes: int | None = MAX_FILE_BYTES, regular_only: bool = False) -> bytes:
    """A file's bytes; raise ImageError with a reason.

    Non-ASCII paths work, and pipes too (`<(curl ...)`) unless `regular_only` (a folder walk: a
    named pipe would block); devices never. A file over `max_bytes` is refused before it is read;
    a pipe is read up to that much.
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | (os.O_NONBLOCK if regular_only else 0)
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: opening a pipe with no writer does not wait
    except OSError as exc:
        reason = "symlink loop" if exc.errno == errno.ELOOP else f"cannot read ({exc.strerror or exc})"
        raise ImageError(f"{path}: {reason}") from None
    try:
        info = os.fstat(fd)
        regular = stat.S_ISREG(info.st_mode)
        device = stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)  # /dev/zero never ends
        if stat.S_ISDIR(info.st_mode) or device or (regular_only and not regular):
            raise ImageError(f"{path}: {_kind(info.st_mode)}, not a regular file")
        if max_bytes is not None and regular and info.st_size > max_bytes:
            raise ImageError(f"{path}: {_mib(info.st_size)} is over the {_mib(max_bytes)} limit for one "
                             "image file")
        if regular_only:
            os.set_blocking(fd, True)
        chunks, total = [], 0
        while True:
            block = os.read(fd, 1 << 20)
            if not block:
                break
            chunks.append(block)
            total += len(block)
            if max_bytes is not None and total > max_bytes:  # a pipe or a growing file
                raise ImageError(f"{path}: more than {_mib(max_bytes)}, the limit for one image file")
        return b"".join(chunks)
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n / 1024:,.0f} KiB"


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a file's header, without decoding pixels; None if Pillow cannot tell."""
    from PIL import Image

    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        # read here: Pillow parses the chunks before IDAT too, and gives up on a zip bomb among them
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")

    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the size is checked by the caller
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception:  # noqa: BLE001  (not something Pillow reads: OpenCV decides)
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return int(width), int(height)


def check_pixels(data: bytes, path, max_pixels: int | None, hint: str = "") -> None:
    """Raise ImageError if the header declares more than `max_pixels` pixels (None or 0: no limit);
    `hint` is added to the message."""
    if not max_pixels:
        return
    size = image_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageError(f"{Path(path)}: {size[0]}x{size[1]} px is over --max-pixels {max_pixels:,}{hint}")


def decode_bytes(data: bytes, path) -> np.ndarray:
    """Decode file bytes as OpenCV does (BGR[A], any depth); errors name `path`."""
    if len(data) == 0:
        raise ImageError(f"{Path(path)}: empty file")
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # e.g. its own pixel limit (CV_IO_MAX_IMAGE_PIXELS)
        detail = (str(exc).strip().splitlines() or [""])[-1].strip()
        raise ImageError(f"{Path(path)}: cannot decode ({detail or 'OpenCV error'})") from None
    if image is None:
        raise ImageError(f"{Path(path)}: not an image or corrupt")
    return image


def decode_image(path) -> np.ndarray:
    """Read a file as OpenCV decodes it (BGR[A], any depth); raise ImageError with a reason."""
    return decode_bytes(read_file(path), path)


def decode_rgb(path) -> np.ndarray:
    """A file's samples as decoded (any depth) in RGB order: (H, W, 3), or (H, W, 1) for grey; alpha
    is dropped. Raises ImageError with a reason."""
    image = decode_image(path)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] == 4:
        image = image[..., :3]
    if image.shape[2] == 3:
        image = image[..., ::-1]
    return image


def read_image(path, grayscale_to_rgb: bool = True) -> np.ndarray:
    """Read an image as float32 RGB in [0, 1]; alpha is dropped, grey becomes 3 channels."""
    image = decode_rgb(path)
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"{Path(path)}: unsupported sample type {image.dtype}")
    image = image.astype(np.float32) / scale
    if image.shape[2] == 1 and grayscale_to_rgb:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8: clip, then round half away from zero (MATLAB's im2uint8)."""
    return np.floor(np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_uint16(image: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(image, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)


def encode_image(suffix: str, image: np.ndarray, bit_depth: int = 8) -> bytes:
    """Encode a float [0, 1] RGB/RGBA/grey image (or an integer one as is) to file bytes."""
    if image.dtype == np.uint8 or image.dtype == np.uint16:
        data = image
    else:
        data = to_uint16(image) if bit_depth == 16 else to_uint8(image)
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[..., 0]
    if data.ndim == 3:
        data = data[..., [2, 1, 0, 3][: data.shape[2]]]  # RGB(A) -> BGR(A)
    ok, buf = cv2.imencode(suffix, data)
    if not ok:
        raise ImageError(f"cannot encode an image as {suffix}")
    return buf.tobytes()


def write_image(path, image: np.ndarray, bit_depth: int = 8) -> None:
    """Write an image atomically; the format comes from the file's suffix."""
    path = Path(path)
    try:
        atomic_write_bytes(path, encode_image(path.suffix.lower() or ".png", image, bit_depth))
    except OSError as exc:
        raise ImageError(f"{path}: cannot write ({exc.strerror or exc})") from None


def mod_crop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of `scale`."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]


def rgb_to_ycbcr(image: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] to YCbCr in [0, 1] (MATLAB rgb2ycbcr, BT.601)."""
    ycc = image.astype(np.float64) @ _RGB_TO_YCBCR.T + _YCBCR_OFFSET
    return (ycc / 255.0).astype(image.dtype if image.dtype.kind == "f" else np.float64)


def ycbcr_to_rgb(image: np.ndarray) -> np.ndarray:
    """Inverse of rgb_to_ycbcr (MATLAB ycbcr2rgb); the result is not clipped."""
    rgb = (image.astype(np.float64) * 255.0 - _YCBCR_OFFSET) @ np.linalg.inv(_RGB_TO_YCBCR).T
    return rgb.astype(image.dtype if image.dtype.kind == "f" else np.float64)


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """Y channel in [16, 235]/255 of an RGB image in [0, 1], shape (H, W)."""
    return (image.astype(np.float64) @ _RGB_TO_YCBCR[0] + 16.0) / 255.0


def rgb_to_y_tf(images):
    """TF version of rgb_to_y for (..., 3) tensors in [0, 1]; keeps a trailing channel axis."""
    import tensorflow as tf

    weights = tf.constant(_RGB_TO_YCBCR[0] / 255.0, dtype=images.dtype)
    return tf.reduce_sum(images * weights, axis=-1, keepdims=True) + tf.cast(16.0 / 255.0, images.dtype)
