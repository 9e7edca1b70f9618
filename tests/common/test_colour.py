"""ICC colour profiles through the upscale CLI, with real profiles from Debian's icc-profiles-free
(.ci/run installs it): wide-gamut inputs keep their profile and pixel values, --to-srgb converts."""
import io

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from common import checkpoints, colour, png_chunks
from common.images import read_image, to_uint8
from common.inference import upscale
from tests.common.test_upscale_cli import read_raw, run, smooth_rgb, weights, write  # noqa: F401

PROFILES = "/usr/share/color/icc/"
ADOBE = open(PROFILES + "compatibleWithAdobeRGB1998.icc", "rb").read()
GREY = open(PROFILES + "Gray.icc", "rb").read()


def vivid_rgb(h=24, w=32) -> np.ndarray:
    """Smooth but saturated colours: where Adobe RGB and sRGB values differ most."""
    y, x = np.mgrid[0:h, 0:w]
    hue = 2 * np.pi * (x / w + 0.3 * np.sin(y / 4))
    rgb = 0.5 + 0.5 * np.stack([np.cos(hue), np.cos(hue - 2.1), np.cos(hue + 2.1)], axis=-1)
    return to_uint8(rgb * (0.4 + 0.6 * y[..., None] / h))


def srgb(rgb: np.ndarray, icc: bytes = ADOBE) -> np.ndarray:
    """The reference conversion: Pillow's ImageCms, default intent."""
    image = Image.fromarray(rgb)
    return np.asarray(ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                                ImageCms.createProfile("sRGB"), outputMode="RGB"))


def bicubic_x2(src, weights) -> np.ndarray:
    """What the 'bicubic' test model makes of a file: uint8 RGB."""
    model, meta = checkpoints.load_model(weights["bicubic"])
    return to_uint8(upscale(read_image(src), model, meta))


def icc_of(path) -> bytes | None:
    with Image.open(path) as image:
        return image.info.get("icc_profile")


def test_profile_kinds():
    assert colour.colour_space(ADOBE) == "RGB" and colour.colour_space(GREY) == "GRAY"
    assert colour.describes(ADOBE, 3) and not colour.describes(ADOBE, 1)
    assert colour.describes(GREY, 1) and not colour.describes(GREY, 3)
    lab = open(PROFILES + "ITULab.icc", "rb").read()
    assert not colour.describes(lab, 3) and not colour.describes(None, 3)
    assert colour.colour_space(b"not a profile") is None
    assert "Adobe RGB" in colour.description(ADOBE) and "sRGB" in colour.description(colour.srgb_profile())


def test_to_srgb_is_imagecms_and_changes_wide_gamut_colours():
    rgb = vivid_rgb()
    converted = colour.to_srgb(rgb, ADOBE)
    np.testing.assert_array_equal(converted, srgb(rgb))
    assert np.abs(converted.astype(int) - rgb).mean() > 5  # Adobe RGB values are not sRGB values
    grey = np.full((2, 2, 3), 128, np.uint8)
    assert np.ptp(colour.to_srgb(grey, ADOBE).astype(int)) <= 1  # neutral stays neutral
    with pytest.raises(colour.ColourError):
        colour.to_srgb(rgb.astype(np.uint16), ADOBE)


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_wide_gamut_round_trip(tmp_path, weights, capsys, ext):
    src = tmp_path / f"adobe.{ext}"
    Image.fromarray(vivid_rgb()).save(src, icc_profile=ADOBE, **({"quality": 95} if ext == "jpg" else {}))
    out = tmp_path / f"out.{ext}"
    assert run([src, "-o", out], weights["bicubic"], capsys)[0] == 0
    assert icc_of(out) == ADOBE  # the same bytes
    expected = bicubic_x2(src, weights)  # the input's own values, upscaled: no re-mapping
    got = read_raw(out)[..., ::-1].astype(int)
    error = np.abs(got - expected).mean()
    remapped = np.abs(got - srgb(expected)).mean()
    if ext == "png":
        assert error == 0
    else:  # JPEG re-encoding only
        assert error < 2 and remapped > 3 * error

    # --to-srgb: converted before the model, written as sRGB (PNG so the numbers are not JPEG's)
    out = tmp_path / "srgb.png"
    assert run([src, "-o", out, "--to-srgb"], weights["bicubic"], capsys)[0] == 0
    assert "sRGB" in colour.description(icc_of(out)) and icc_of(out) != ADOBE
    got = read_raw(out)[..., ::-1].astype(int)
    error = np.abs(got - srgb(expected)).mean() / 255
    print(f"{ext}: --to-srgb mean colour error vs ImageCms(bicubic) = {error * 255:.3f}/255")
    assert error < 1 / 255
    assert np.abs(got - expected).mean() > 5  # really converted


def test_16bit_png_keeps_depth_and_profile(tmp_path, weights, capsys):
    deep = vivid_rgb().astype(np.uint16) * 257 + 100
    import cv2

    png = png_chunks.add_metadata(cv2.imencode(".png", deep[..., ::-1])[1].tobytes(), icc=ADOBE)
    src = tmp_path / "deep.png"
    src.write_bytes(png)
    assert icc_of(src) == ADOBE  # Pillow reads the profile of a 16-bit PNG
    assert run([src, "-o", tmp_path / "out.png"], weights["nearest"], capsys)[0] == 0
    out = read_raw(tmp_path / "out.png")
    assert out.dtype == np.uint16 and icc_of(tmp_path / "out.png") == ADOBE
    np.testing.assert_array_equal(out[..., ::-1], deep.repeat(2, 0).repeat(2, 1))
    code, err = run([src, "-o", tmp_path / "srgb.png", "--to-srgb"], weights["nearest"], capsys)
    assert code == 2 and err.count("\n") == 1 and "--to-srgb works on 8-bit images only" in err
    assert not (tmp_path / "srgb.png").exists()


def test_16bit_tiff_and_webp_keep_the_profile(tmp_path, weights, capsys):
    deep = vivid_rgb().astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "deep.tif", deep, photometric="rgb",
                     extratags=[(34675, 7, len(ADOBE), ADOBE, True)])
    assert run([tmp_path / "deep.tif", "-o", tmp_path / "out.tif"], weights["nearest"], capsys)[0] == 0
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        page = tif.pages[0]
        assert page.tags[34675].value == ADOBE
        np.testing.assert_array_equal(page.asarray(), deep.repeat(2, 0).repeat(2, 1))
    Image.fromarray(vivid_rgb()).save(tmp_path / "in.webp", lossless=True, icc_profile=ADOBE)
    assert run([tmp_path / "in.webp", "-o", tmp_path / "out.webp"], weights["nearest"], capsys)[0] == 0
    assert icc_of(tmp_path / "out.webp") == ADOBE
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.webp")),
                                  vivid_rgb().repeat(2, 0).repeat(2, 1))


@pytest.mark.parametrize("flag", [[], ["--to-srgb"]])
def test_grey_keeps_its_grey_profile(tmp_path, weights, capsys, flag):
    grey = smooth_rgb()[..., 1]
    Image.fromarray(grey).save(tmp_path / "grey.png", icc_profile=GREY)
    assert run([tmp_path / "grey.png", "-o", tmp_path / "out.png", *flag], weights["nearest"], capsys)[0] == 0
    out = read_raw(tmp_path / "out.png")
    assert out.ndim == 2 and icc_of(tmp_path / "out.png") == GREY
    np.testing.assert_array_equal(out, grey.repeat(2, 0).repeat(2, 1))


def test_no_profile_stays_without_one(tmp_path, weights, capsys):
    src = write(tmp_path / "plain.png", vivid_rgb()[..., ::-1])
    assert run([src, "-o", tmp_path / "out.png", "--to-srgb"], weights["bicubic"], capsys)[0] == 0
    assert icc_of(tmp_path / "out.png") is None
    np.testing.assert_array_equal(read_raw(tmp_path / "out.png")[..., ::-1], bicubic_x2(src, weights))
