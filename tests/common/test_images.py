"""Image files: decoding, PNG chunks, photo metadata (EXIF, XMP, text, JPEG options) through the CLI."""
import io
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps, JpegImagePlugin, PngImagePlugin

from common import png_chunks, photo_metadata
from common.images import ImageError, decode_bytes, decode_image, read_file, write_image
from tests.common.test_upscale_cli import read_raw, run, smooth_rgb, weights, write  # noqa: F401

ADOBE = "/usr/share/color/icc/compatibleWithAdobeRGB1998.icc"
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def photo_exif(orientation=6, width=28, height=20) -> Image.Exif:
    exif = Image.Exif()
    exif[photo_metadata.ORIENTATION] = orientation
    exif[0x010F] = "Camera maker"
    exif[0x0110] = "Model 7"
    exif.get_ifd(photo_metadata.EXIF_IFD)[photo_metadata.PIXEL_X] = width
    exif.get_ifd(photo_metadata.EXIF_IFD)[photo_metadata.PIXEL_Y] = height
    return exif


# --- decoding (behaviour kept) ------------------------------------------------------------------


def test_decode_errors_name_the_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ImageError, match="empty.png: empty file"):
        decode_image(tmp_path / "empty.png")
    with pytest.raises(ImageError, match="text.png: not an image or corrupt"):
        decode_image(tmp_path / "text.png")
    with pytest.raises(ImageError, match="missing.png: cannot read"):
        read_file(tmp_path / "missing.png")


def test_decode_bytes_equals_decode_image(tmp_path):
    src = write(tmp_path / "a.png", (smooth_rgb().astype(np.uint16) * 257)[..., ::-1])
    np.testing.assert_array_equal(decode_bytes(src.read_bytes(), src), decode_image(src))
    assert decode_image(src).dtype == np.uint16


def test_write_image_leaves_no_temporary_file(tmp_path):
    write_image(tmp_path / "x.png", smooth_rgb() / 255.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


# --- PNG chunks -------------------------------------------------------------------------------------


def test_png_chunks_round_trip_through_pillow():
    png = cv2.imencode(".png", smooth_rgb()[..., ::-1])[1].tobytes()
    icc = open(ADOBE, "rb").read()
    exif = photo_exif().tobytes()[6:]  # eXIf holds no "Exif\0\0" header
    text = {"Title": "Été", "Comment": "snow ❄"}  # Latin-1 -> tEXt, other -> iTXt
    out = png_chunks.add_metadata(png, icc=icc, exif=exif, xmp=XMP, text=text)
    kinds = [kind for kind, _ in png_chunks.split(out)]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    assert kinds.index(b"iCCP") < kinds.index(b"IDAT") and kinds.index(b"eXIf") < kinds.index(b"IDAT")
    assert b"tEXt" in kinds and b"iTXt" in kinds
    with Image.open(io.BytesIO(out)) as image:
        assert image.info["icc_profile"] == icc
        assert image.info["xmp"] == XMP
        assert image.text["Title"] == "Été" and image.text["Comment"] == "snow ❄"
        assert image.getexif()[0x010F] == "Camera maker"
        np.testing.assert_array_equal(np.asarray(image), smooth_rgb())  # pixels untouched
    found = png_chunks.read_metadata(out)
    assert found["icc"] == icc and found["exif"] == exif and found["xmp"] == XMP and found["text"] == text


def test_png_chunks_read_what_pillow_writes():
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "x")
    info.add_text("Long", "y" * 3000, zip=True)  # zTXt
    info.add_itxt("Note", "ünïcode", zip=True)  # compressed iTXt
    buf = io.BytesIO()
    Image.fromarray(smooth_rgb()).save(buf, "PNG", pnginfo=info)
    assert png_chunks.read_metadata(buf.getvalue())["text"] == {"Software": "x", "Long": "y" * 3000,
                                                                "Note": "ünïcode"}


def test_text_after_the_image_data_is_found_and_kept():
    chunks = png_chunks.split(cv2.imencode(".png", smooth_rgb())[1].tobytes())
    late = png_chunks.join([*chunks[:-1], png_chunks.text_chunk("Author", "Ann"), chunks[-1]])
    assert png_chunks.read_metadata(late)["text"] == {"Author": "Ann"}
    out = png_chunks.add_metadata(late, icc=open(ADOBE, "rb").read())
    assert [k for k, _ in png_chunks.split(out)][-2:] == [b"tEXt", b"IEND"]
    assert Image.open(io.BytesIO(out)).text == {"Author": "Ann"}


def test_profile_replaces_srgb_chunks_and_bad_crc_is_caught():
    png = cv2.imencode(".png", smooth_rgb())[1].tobytes()
    chunks = png_chunks.split(png)
    with_srgb = png_chunks.join([chunks[0], (b"sRGB", b"\0"), (b"gAMA", (45455).to_bytes(4, "big")),
                                 *chunks[1:]])
    out = png_chunks.add_metadata(with_srgb, icc=open(ADOBE, "rb").read())
    kinds = [kind for kind, _ in png_chunks.split(out)]
    assert b"iCCP" in kinds and b"sRGB" not in kinds and b"gAMA" not in kinds
    broken = bytearray(out)
    broken[40] ^= 0xFF
    with pytest.raises(png_chunks.PNGError):
        png_chunks.split(bytes(broken))
    assert zlib.crc32(b"IEND") == int.from_bytes(out[-4:], "big")


# --- photo metadata ------------------------------------------------------------------------------------


def test_exif_for_output_resets_orientation_and_updates_sizes():
    out = photo_metadata.exif_for_output(photo_exif(orientation=8).tobytes(), 640, 480)
    exif = Image.Exif()
    exif.load(out)
    assert exif[photo_metadata.ORIENTATION] == 1 and exif[0x010F] == "Camera maker"
    assert exif[0x0110] == "Model 7"
    ifd = exif.get_ifd(photo_metadata.EXIF_IFD)
    assert (ifd[photo_metadata.PIXEL_X], ifd[photo_metadata.PIXEL_Y]) == (640, 480)
    assert photo_metadata.exif_for_output(b"Exif\0\0garbage", 1, 1) is None


def test_strip_keeps_only_the_profile():
    info = photo_metadata.PhotoInfo(icc=b"p", exif=b"e", xmp=b"x", text={"a": "b"}, subsampling=0)
    out = photo_metadata.for_output(info, 10, 10, strip=True)
    assert out.icc == b"p" and not (out.exif or out.xmp or out.text)


@pytest.mark.parametrize("subsampling", [0, 1, 2])
def test_jpeg_keeps_chroma_subsampling_and_takes_quality(tmp_path, weights, capsys, subsampling):
    Image.fromarray(smooth_rgb(32, 48)).save(tmp_path / "in.jpg", quality=95, subsampling=subsampling)
    assert run([tmp_path / "in.jpg", "-o", tmp_path / "hi.jpg"], weights["nearest"], capsys)[0] == 0
    assert run([tmp_path / "in.jpg", "-o", tmp_path / "lo.jpg", "--quality", "40"],
               weights["nearest"], capsys)[0] == 0
    with Image.open(tmp_path / "hi.jpg") as image:
        assert JpegImagePlugin.get_sampling(image) == subsampling
    assert (tmp_path / "lo.jpg").stat().st_size < 0.7 * (tmp_path / "hi.jpg").stat().st_size
    # The default is quality 95: Pillow's own quality-95 encoding of the same pixels has the same size.
    pixels = np.asarray(Image.open(tmp_path / "in.jpg")).repeat(2, 0).repeat(2, 1)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=95, subsampling=subsampling)
    assert len(buf.getvalue()) == (tmp_path / "hi.jpg").stat().st_size


@pytest.mark.parametrize("ext", ["jpg", "png", "webp"])
def test_exif_xmp_round_trip(tmp_path, weights, capsys, ext):
    rgb = smooth_rgb(20, 28)
    rgb[0, 0] = (255, 0, 0)
    options = {"exif": photo_exif(orientation=6, width=28, height=20), "xmp": XMP}
    if ext == "jpg":
        options["quality"] = 95
    if ext == "png":  # Pillow writes a PNG's XMP only as this iTXt chunk
        del options["xmp"]
        options["pnginfo"] = PngImagePlugin.PngInfo()
        options["pnginfo"].add_itxt(png_chunks.XMP_KEYWORD, XMP.decode())
    Image.fromarray(rgb).save(tmp_path / f"in.{ext}", **options)
    assert run([tmp_path / f"in.{ext}", "-o", tmp_path / f"out.{ext}"], weights["nearest"], capsys)[0] == 0
    with Image.open(tmp_path / f"out.{ext}") as out:
        assert out.size == (40, 56)  # upright (portrait), twice the size
        exif = out.getexif()
        assert exif[photo_metadata.ORIENTATION] == 1
        assert exif[0x010F] == "Camera maker" and exif[0x0110] == "Model 7"
        ifd = exif.get_ifd(photo_metadata.EXIF_IFD)
        assert (ifd[photo_metadata.PIXEL_X], ifd[photo_metadata.PIXEL_Y]) == (40, 56)
        assert out.info["xmp"] == XMP
        pixels = np.asarray(out.convert("RGB")).astype(int)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / f"in.{ext}")).convert("RGB"))
    expected = upright.repeat(2, 0).repeat(2, 1)
    assert np.abs(pixels - expected).mean() < (3 if ext == "jpg" else 1e-9)  # a wrong turn: > 30
    # stripped: no EXIF or XMP, same pixels
    assert run([tmp_path / f"in.{ext}", "-o", tmp_path / f"bare.{ext}", "--strip-metadata"],
               weights["nearest"], capsys)[0] == 0
    with Image.open(tmp_path / f"bare.{ext}") as bare:
        assert not bare.getexif() and "xmp" not in bare.info and bare.size == (40, 56)


def test_png_text_chunks_are_copied(tmp_path, weights, capsys):
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "Lac d'Annecy")
    info.add_itxt("Description", "Été ☀")
    Image.fromarray(smooth_rgb()).save(tmp_path / "in.png", pnginfo=info)
    assert run([tmp_path / "in.png", "-o", tmp_path / "out.png"], weights["nearest"], capsys)[0] == 0
    assert Image.open(tmp_path / "out.png").text == {"Title": "Lac d'Annecy", "Description": "Été ☀"}
    assert run([tmp_path / "in.png", "-o", tmp_path / "bare.png", "--strip-metadata"],
               weights["nearest"], capsys)[0] == 0
    assert Image.open(tmp_path / "bare.png").text == {}
    np.testing.assert_array_equal(read_raw(tmp_path / "bare.png"), read_raw(tmp_path / "out.png"))
