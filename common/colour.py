"""ICC colour profiles of photos (Pillow's ImageCms, i.e. LittleCMS).

The upscaler works in whatever colour space the pixels are in; this module only decides whether
an embedded profile describes the decoded pixels (so it can be written out again unchanged) and
converts 8-bit RGB to sRGB for `--to-srgb`.
"""
import io

import numpy as np
from PIL import Image, ImageCms

# Pillow's default for profileToProfile; for the matrix/TRC profiles of photos and displays it
# equals relative colorimetric.
INTENT = ImageCms.Intent.PERCEPTUAL


class ColourError(ValueError):
    pass


def _profile(icc: bytes) -> ImageCms.ImageCmsProfile:
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError, TypeError, ValueError) as exc:
        raise ColourError(f"unreadable ICC profile ({exc})") from None


def colour_space(icc: bytes) -> str | None:
    """The profile's data colour space ("RGB", "GRAY", "CMYK", ...), None if unreadable."""
    try:
        return _profile(icc).profile.xcolor_space.strip()
    except ColourError:
        return None


def describes(icc: bytes | None, channels: int) -> bool:
    """Whether a profile fits decoded pixels with this many colour channels (3 RGB, 1 grey).

    A CMYK JPEG's profile does not fit the RGB pixels OpenCV decodes from it, for example.
    """
    if not icc:
        return False
    return colour_space(icc) == {3: "RGB", 1: "GRAY"}.get(channels)


def description(icc: bytes) -> str:
    try:
        return ImageCms.getProfileDescription(_profile(icc)).strip()
    except (ColourError, ImageCms.PyCMSError):
        return ""


def srgb_profile() -> bytes:
    """LittleCMS's built-in sRGB profile, embedded in `--to-srgb` outputs."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def to_srgb(rgb: np.ndarray, icc: bytes) -> np.ndarray:
    """uint8 (H, W, 3) RGB in the profile's space -> uint8 sRGB, as ImageCms.profileToProfile does."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ColourError("conversion to sRGB needs 8-bit RGB pixels")
    if colour_space(icc) != "RGB":
        raise ColourError("the embedded profile is not an RGB profile")
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    try:
        out = ImageCms.profileToProfile(image, _profile(icc), ImageCms.createProfile("sRGB"),
                                        renderingIntent=INTENT, outputMode="RGB")
    except ImageCms.PyCMSError as exc:
        raise ColourError(f"cannot convert to sRGB ({exc})") from None
    return np.asarray(out)
