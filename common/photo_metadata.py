"""A photo's metadata (ICC profile, EXIF, XMP, PNG text, JPEG subsampling): read it, write it back.

OpenCV decodes and encodes the pixels (any depth) but drops all metadata; Pillow reads the
metadata from the file's header without decoding pixels it could not hold (16-bit RGB). On output
JPEG and WebP are encoded with Pillow (which embeds everything), PNG by OpenCV with the chunks
added (`common.png_chunks`), TIFF by tifffile (profile and XMP tags; EXIF is not written into
TIFF), BMP holds no metadata.
"""
import io
from dataclasses import dataclass, field, replace

import numpy as np

from common import png_chunks
from common.images import ImageError, encode_image

ORIENTATION, IMAGE_WIDTH, IMAGE_LENGTH = 0x0112, 0x0100, 0x0101
EXIF_IFD, PIXEL_X, PIXEL_Y = 0x8769, 0xA002, 0xA003
TIFF_ICC, TIFF_XMP = 34675, 700
JPEG_SUBSAMPLINGS = (0, 1, 2)  # Pillow's codes for 4:4:4, 4:2:2, 4:2:0


@dataclass
class PhotoInfo:
    """What a file carries besides its pixels; every field may be empty."""

    icc: bytes | None = None
    exif: bytes | None = None  # starts with b"Exif\0\0", as Pillow gives and takes it
    xmp: bytes | None = None
    text: dict[str, str] = field(default_factory=dict)  # PNG tEXt/zTXt/iTXt, XMP excluded
    orientation: int = 1
    subsampling: int | None = None  # of a JPEG input
    dropped: list[str] = field(default_factory=list)  # chunks left out (over the size limits), one line each
    dropped_at: list[int] = field(default_factory=list)  # their offsets in a PNG (png_chunks.remove_chunks)

    def stripped(self) -> "PhotoInfo":
        """Only the colour profile (which gives the pixels their meaning) is left."""
        return PhotoInfo(icc=self.icc)


def _exif_orientation(exif: bytes | None) -> int:
    from PIL import Image

    if not exif:
        return 1
    data = Image.Exif()
    try:
        data.load(exif)
        value = int(data.get(ORIENTATION, 1))
    except Exception:  # noqa: BLE001  (a broken EXIF block: no rotation)
        return 1
    return value if 1 <= value <= 8 else 1


def _read_png(data: bytes) -> PhotoInfo:
    try:
        found = png_chunks.read_metadata(data)
    except png_chunks.PNGError:
        return PhotoInfo()
    exif = b"Exif\0\0" + found["exif"] if found["exif"] else None
    return PhotoInfo(icc=found["icc"], exif=exif, xmp=found["xmp"], text=found["text"],
                     orientation=_exif_orientation(exif), dropped=found["dropped"],
                     dropped_at=found["dropped_at"])


def read_info(data: bytes) -> PhotoInfo:
    """Metadata of an image file's bytes; an empty PhotoInfo when it cannot be parsed."""
    if data.startswith(png_chunks.SIGNATURE):
        return _read_png(data)
    try:
        from PIL import Image, JpegImagePlugin

        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # only the header is read
        try:
            image = Image.open(io.BytesIO(data))
        finally:
            Image.MAX_IMAGE_PIXELS = limit
        with image:
            info = image.info
            orientation = int(image.getexif().get(ORIENTATION, 1))
            subsampling = None
            if image.format == "JPEG" and image.mode != "L":
                subsampling = JpegImagePlugin.get_sampling(image)
            raw_exif = info.get("exif")
            if image.format == "TIFF":  # a TIFF's "EXIF" is its own image tags: not carried
                raw_exif = None
            xmp = info.get("xmp")
            if isinstance(xmp, str):
                xmp = xmp.encode("utf-8")
            return PhotoInfo(
                icc=info.get("icc_profile") or None,
                exif=bytes(raw_exif) if raw_exif else None,
                xmp=bytes(xmp) if xmp else None,
                orientation=orientation if 1 <= orientation <= 8 else 1,
                subsampling=subsampling if subsampling in JPEG_SUBSAMPLINGS else None,
            )
    except Exception:  # noqa: BLE001  (unreadable metadata is no reason to fail: OpenCV decides)
        return PhotoInfo()


def exif_for_output(exif: bytes, width: int, height: int) -> bytes | None:
    """EXIF for the upscaled, upright image: orientation 1, pixel dimensions updated.

    The thumbnail (IFD1) is dropped: it shows the old image and Pillow does not write it back.
    """
    from PIL import Image

    data = Image.Exif()
    try:
        data.load(exif)
    except Exception:  # noqa: BLE001  (a broken EXIF block is dropped, not fatal)
        return None
    if ORIENTATION in data:
        data[ORIENTATION] = 1
    if IMAGE_WIDTH in data:
        data[IMAGE_WIDTH], data[IMAGE_LENGTH] = width, height
    if EXIF_IFD in data:
        ifd = data.get_ifd(EXIF_IFD)
        ifd[PIXEL_X], ifd[PIXEL_Y] = width, height
    return data.tobytes()


def for_output(info: PhotoInfo, width: int, height: int, strip: bool = False) -> PhotoInfo:
    """The metadata to write with an output of this size."""
    if strip:
        return info.stripped()
    exif = exif_for_output(info.exif, width, height) if info.exif else None
    return replace(info, exif=exif, orientation=1)


def _pil_image(data: np.ndarray):
    from PIL import Image

    if data.dtype != np.uint8:
        raise ImageError("this format takes 8-bit pixels only")
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[..., 0]
    return Image.fromarray(np.ascontiguousarray(data))  # L, LA, RGB or RGBA from the shape


def _encode_jpeg(data, info: PhotoInfo, quality: int) -> bytes:
    image = _pil_image(data)
    options = {"quality": int(quality)}
    if image.mode == "RGB" and info.subsampling is not None:
        options["subsampling"] = info.subsampling
    if info.icc:
        options["icc_profile"] = info.icc
    if info.exif:
        options["exif"] = info.exif
    if info.xmp:
        options["xmp"] = info.xmp
    buf = io.BytesIO()
    image.save(buf, "JPEG", **options)
    return buf.getvalue()


def _encode_webp(data, info: PhotoInfo) -> bytes:
    image = _pil_image(data)
    if image.mode == "LA":
        image = image.convert("RGBA")
    elif image.mode == "L":
        image = image.convert("RGB")  # WebP has no grey
    options = {"lossless": True, "exact": True}  # as OpenCV's default (quality 100 = lossless)
    for key, value in (("icc_profile", info.icc), ("exif", info.exif), ("xmp", info.xmp)):
        if value:
            options[key] = value
    buf = io.BytesIO()
    image.save(buf, "WEBP", **options)
    return buf.getvalue()


def _encode_tiff(data, info: PhotoInfo) -> bytes:
    import tifffile

    channels = 1 if data.ndim == 2 else data.shape[2]
    if channels == 1 and data.ndim == 3:
        data = data[..., 0]
    extratags = []
    if info.icc:
        extratags.append((TIFF_ICC, 7, len(info.icc), info.icc, True))
    if info.xmp:
        extratags.append((TIFF_XMP, 1, len(info.xmp), info.xmp, True))
    photometric = "rgb" if channels >= 3 else "minisblack"
    extrasamples = ("unassalpha",) if channels in (2, 4) else None
    buf = io.BytesIO()
    tifffile.imwrite(buf, data, photometric=photometric, compression="zlib", extrasamples=extrasamples,
                     extratags=extratags, metadata=None)
    return buf.getvalue()


def encode(suffix: str, data: np.ndarray, info: PhotoInfo | None = None, quality: int = 95) -> bytes:
    """File bytes of an integer image (RGB(A) or grey, as `common.images` holds it) with metadata."""
    suffix = suffix.lower()
    info = info or PhotoInfo()
    has_metadata = bool(info.icc or info.exif or info.xmp or info.text)
    if suffix in (".jpg", ".jpeg"):
        return _encode_jpeg(data, info, quality)
    if suffix == ".webp" and has_metadata:
        return _encode_webp(data, info)
    if suffix in (".tif", ".tiff") and (info.icc or info.xmp):
        return _encode_tiff(data, info)
    encoded = encode_image(suffix, data)
    if suffix == ".png" and has_metadata:
        exif = info.exif[6:] if info.exif and info.exif.startswith(b"Exif\0\0") else info.exif
        encoded = png_chunks.add_metadata(encoded, icc=info.icc, exif=exif, xmp=info.xmp, text=info.text)
    return encoded
