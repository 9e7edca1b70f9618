"""The shared upscale command: image modes, errors, folders, options."""
import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from common import checkpoints, upscale_cli
from common.images import read_image, to_uint8
from common.inference import upscale
from tests.common.test_checkpoints import POST_META, PRE_META, tiny_post, tiny_pre
from tests.common.test_inference import identity, nearest_x2

RNG = np.random.default_rng(2)


def smooth_rgb(h=20, w=28) -> np.ndarray:
    """A smooth uint8 RGB test picture (compresses well, survives JPEG)."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x / w, y / h, 0.5 + 0.4 * np.sin((x + y) / 5)], axis=-1)
    return to_uint8(img)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    return {
        "post": checkpoints.save_model(tiny_post(), folder / "post_x2.h5", POST_META),
        "pre": checkpoints.save_model(tiny_pre(1, "valid"), folder / "pre_x2.h5", PRE_META),
        "nearest": checkpoints.save_model(nearest_x2(), folder / "nearest_x2.h5",
                                          {**POST_META, "architecture": "test_nearest"}),
        "bicubic": checkpoints.save_model(identity(3), folder / "bicubic_x2.h5",
                                          {"architecture": "test_identity", "scale": 2, "upsampling": "pre",
                                           "color": "rgb"}),
        "folder": folder,
    }


def run(args, weights_file, capsys, chapter=None):
    code = upscale_cli.main([str(a) for a in args] + ["--weights", str(weights_file), "-q"], chapter=chapter)
    return code, capsys.readouterr().err


def write(path, array):
    """Write BGR(A)/grey arrays as OpenCV stores them (any depth)."""
    ok, buf = cv2.imencode(path.suffix, array)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def read_raw(path):
    return cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_UNCHANGED)


def files_in(folder):
    return sorted(p.name for p in folder.iterdir())


# --- image modes ------------------------------------------------------------------------------------


def test_rgb_8bit_matches_the_library(tmp_path, weights, capsys):
    src = write(tmp_path / "in.png", smooth_rgb()[..., ::-1])
    code, err = run([src, "-o", tmp_path / "out.png"], weights["post"], capsys)
    assert code == 0 and err == ""
    out = read_raw(tmp_path / "out.png")
    assert out.dtype == np.uint8 and out.shape == (40, 56, 3)
    model, meta = checkpoints.load_model(weights["post"])
    expected = to_uint8(upscale(read_image(src), model, meta))[..., ::-1]
    np.testing.assert_array_equal(out, expected)


def test_16bit_stays_16bit(tmp_path, weights, capsys):
    img16 = (smooth_rgb().astype(np.uint16) * 257 + RNG.integers(0, 200, (20, 28, 3))).astype(np.uint16)
    src = write(tmp_path / "deep.png", img16)
    assert run([src, "-o", tmp_path / "out"], weights["nearest"], capsys)[0] == 0
    out = read_raw(tmp_path / "out" / "deep_x2.png")
    assert out.dtype == np.uint16 and out.shape == (40, 56, 3)
    np.testing.assert_array_equal(out, img16.repeat(2, 0).repeat(2, 1))  # exact: float32 keeps 16 bits
    assert run([src, "-o", tmp_path / "out", "--ext", "jpg"], weights["nearest"], capsys)[0] == 0
    assert read_raw(tmp_path / "out" / "deep_x2.jpg").dtype == np.uint8  # JPEG has no 16-bit


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_grey_stays_grey(tmp_path, weights, capsys, dtype):
    grey = smooth_rgb()[..., 0].astype(dtype) * (257 if dtype == np.uint16 else 1)
    src = write(tmp_path / "grey.png", grey)
    assert run([src, "-o", tmp_path / "g.png"], weights["nearest"], capsys)[0] == 0
    out = read_raw(tmp_path / "g.png")
    assert out.shape == (40, 56) and out.dtype == dtype
    np.testing.assert_array_equal(out, grey.repeat(2, 0).repeat(2, 1))


def test_alpha_is_kept_and_colour_premultiplied(tmp_path, weights, capsys):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:, :8] = (0, 0, 255, 255)  # opaque red (BGRA) on the left
    rgba[:, 8:] = (0, 255, 0, 0)  # invisible green on the right
    src = write(tmp_path / "rgba.png", rgba)
    assert run([src, "-o", tmp_path / "o.png"], weights["bicubic"], capsys)[0] == 0
    out = read_raw(tmp_path / "o.png")
    assert out.shape == (32, 32, 4)
    assert (out[:, :14, 3] == 255).all() and (out[:, 18:, 3] == 0).all()
    visible = out[..., 3] > 0
    assert (out[..., 1][visible] == 0).all()  # no green bleeds into visible edge pixels
    assert (out[..., 2][visible] >= 250).all()  # the edge stays red, not darkened
    # Without premultiplication the same bicubic model mixes green into the edge:
    model, meta = checkpoints.load_model(weights["bicubic"])
    plain = upscale(rgba[..., 2::-1].astype(np.float32) / 255, model, meta)
    assert plain[..., 1][visible].max() > 0.05


def test_paletted_png(tmp_path, weights, capsys):
    Image.fromarray(smooth_rgb()).convert("P", palette=Image.ADAPTIVE, colors=8).save(tmp_path / "pal.png")
    assert run([tmp_path / "pal.png", "-o", tmp_path / "o.png"], weights["nearest"], capsys)[0] == 0
    out = read_raw(tmp_path / "o.png")
    expected = np.asarray(Image.open(tmp_path / "pal.png").convert("RGB"))[..., ::-1]
    np.testing.assert_array_equal(out, expected.repeat(2, 0).repeat(2, 1))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path, orientation):
    rgb = smooth_rgb(6, 10)
    rgb[0, 0] = (255, 0, 0)  # a marker corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(rgb).save(tmp_path / "o.png", exif=exif)
    loaded = upscale_cli.load_image(tmp_path / "o.png").colour
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")))
    np.testing.assert_array_equal(to_uint8(loaded), expected)


def test_exif_rotated_jpeg(tmp_path, weights, capsys):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees clockwise
    Image.fromarray(smooth_rgb(20, 28)).save(tmp_path / "photo.jpg", exif=exif, quality=95)
    assert run([tmp_path / "photo.jpg", "-o", tmp_path / "up"], weights["nearest"], capsys)[0] == 0
    out = read_raw(tmp_path / "up" / "photo_x2.jpg")
    assert out.shape == (56, 40, 3)  # portrait, twice the size
    upright = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "photo.jpg")))
    diff = np.abs(out[..., ::-1].astype(int) - upright.repeat(2, 0).repeat(2, 1))
    assert diff.mean() < 3


def test_cmyk_jpeg(tmp_path, weights, capsys):
    rgb = smooth_rgb()
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    assert run([tmp_path / "cmyk.jpg", "-o", tmp_path / "c.png"], weights["nearest"], capsys)[0] == 0
    out = read_raw(tmp_path / "c.png")[..., ::-1]
    assert out.shape == (40, 56, 3)
    assert np.abs(out.astype(int) - rgb.repeat(2, 0).repeat(2, 1)).mean() < 4


def test_spaces_and_non_ascii_paths(tmp_path, weights, capsys):
    folder = tmp_path / "my pictures ü"
    folder.mkdir()
    write(folder / "été 1.png", smooth_rgb())
    code, err = run([folder, "-o", tmp_path / "résultats x2"], weights["post"], capsys)
    assert code == 0, err
    assert files_in(tmp_path / "résultats x2") == ["été 1_x2.png"]


def test_outscale_suffix_ext_and_tiling(tmp_path, weights, capsys):
    src = write(tmp_path / "a.png", smooth_rgb())
    out = tmp_path / "out"
    assert run([src, "-o", out, "--outscale", "3"], weights["post"], capsys)[0] == 0
    assert read_raw(out / "a_x3.png").shape == (60, 84, 3)
    assert run([src, "-o", out, "--outscale", "1", "--suffix", "_same", "--ext", "jpg"],
               weights["post"], capsys)[0] == 0
    assert read_raw(out / "a_same.jpg").shape == (20, 28, 3)
    assert run([src, "-o", out / "whole.png", "--tile", "0"], weights["post"], capsys)[0] == 0
    assert run([src, "-o", out / "tiled.png", "--tile", "12"], weights["post"], capsys)[0] == 0
    diff = read_raw(out / "whole.png").astype(int) - read_raw(out / "tiled.png")
    assert np.abs(diff).max() <= 1


def test_precision_option_is_accepted(tmp_path, weights, capsys):
    src = write(tmp_path / "a.png", smooth_rgb())
    code = upscale_cli.main([str(src), "-o", str(tmp_path / "b.png"), "--precision", "bfloat16",
                             "--weights", str(weights["post"])])
    err = capsys.readouterr().err
    assert code == 0 and "precision: bfloat16" in err
    assert (tmp_path / "b.png").exists()


# --- errors ----------------------------------------------------------------------------------------


def assert_one_error(err, subject):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {subject}: "), err


@pytest.mark.parametrize("kind", ["zero-byte", "truncated", "not-an-image", "too-small"])
def test_bad_input_file(tmp_path, weights, capsys, kind):
    src = tmp_path / "bad.png"
    good = cv2.imencode(".png", smooth_rgb())[1].tobytes()
    if kind == "zero-byte":
        src.write_bytes(b"")
    elif kind == "truncated":
        src.write_bytes(good[: len(good) // 2])
    elif kind == "not-an-image":
        src.write_text("just some text\n")
    else:
        write(src, np.zeros((1, 1, 3), np.uint8))
    code, err = run([src, "-o", tmp_path / "out.png"], weights["pre"], capsys)
    assert code == 2
    assert_one_error(err, src)
    if kind == "too-small":
        assert "needs at least 2x2" in err
    assert files_in(tmp_path) == ["bad.png"]


def test_unwritable_output(tmp_path, weights, capsys):
    src = write(tmp_path / "a.png", smooth_rgb())
    target = tmp_path / "missing folder" / "out.png"
    code, err = run([src, "-o", target], weights["post"], capsys)
    assert code == 2
    assert_one_error(err, target)
    (tmp_path / "file").write_text("not a folder")
    code, err = run([src, "-o", tmp_path / "file" / "sub"], weights["post"], capsys)
    assert code == 2 and "cannot create the output folder" in err
    assert_one_error(err, tmp_path / "file" / "sub")
    assert files_in(tmp_path) == ["a.png", "file"]


def test_bad_checkpoints(tmp_path, weights, capsys):
    src = write(tmp_path / "a.png", smooth_rgb())
    out = tmp_path / "o.png"
    code, err = run([src, "-o", out], tmp_path / "nothing.h5", capsys)
    assert code == 2 and "checkpoint not found" in err
    assert_one_error(err, tmp_path / "nothing.h5")
    (tmp_path / "junk.h5").write_bytes(b"\0" * 100)
    code, err = run([src, "-o", out], tmp_path / "junk.h5", capsys)
    assert code == 2 and "not an HDF5 file" in err
    assert_one_error(err, tmp_path / "junk.h5")
    code, err = run([src, "-o", out], weights["post"], capsys, chapter="srcnn")
    assert code == 2 and "holds a different architecture" in err
    assert_one_error(err, weights["post"])
    assert not out.exists()


def test_chapter_wrapper_reports_missing_shipped_weights(tmp_path, capsys):
    import srcnn.upscale

    src = write(tmp_path / "a.png", smooth_rgb())
    code = srcnn.upscale.main([str(src), "-o", str(tmp_path / "o.png"), "--scale", "7"])
    err = capsys.readouterr().err
    assert code == 2 and "srcnn_x7.h5: checkpoint not found" in err and len(err.strip().splitlines()) == 1


def test_folder_run_continues_after_a_bad_file(tmp_path, weights, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "a.png", smooth_rgb())
    (folder / "b.png").write_bytes(b"broken")
    write(folder / "c.jpg", smooth_rgb())
    code, err = run([folder, "-o", tmp_path / "out"], weights["post"], capsys)
    assert code == 1
    assert files_in(tmp_path / "out") == ["a_x2.png", "c_x2.jpg"]
    assert f"error: {folder / 'b.png'}: not an image or corrupt" in err
    assert "1 of 3 images failed" in err


def test_several_inputs_need_an_output_folder(tmp_path, weights, capsys):
    a = write(tmp_path / "a.png", smooth_rgb())
    code, err = run([a, a, "-o", tmp_path / "x.png"], weights["post"], capsys)
    assert code == 2 and "must be a folder" in err
    assert files_in(tmp_path) == ["a.png"]


def test_never_overwrites_the_input(tmp_path, weights, capsys):
    a = write(tmp_path / "a.png", smooth_rgb())
    before = a.read_bytes()
    code, err = run([a, "--suffix", ""], weights["post"], capsys)
    assert code == 2 and "would overwrite the input" in err
    assert a.read_bytes() == before


def test_self_ensemble_option(tmp_path, weights, capsys):
    src = write(tmp_path / "a.png", smooth_rgb()[..., ::-1])
    code, err = run([src, "-o", tmp_path / "b.png", "--self-ensemble"], weights["post"], capsys)
    assert code == 0 and err == ""
    model, meta = checkpoints.load_model(weights["post"])
    expected = to_uint8(upscale(read_image(src), model, meta, self_ensemble=True))[..., ::-1]
    np.testing.assert_array_equal(read_raw(tmp_path / "b.png"), expected)
    plain = to_uint8(upscale(read_image(src), model, meta))[..., ::-1]
    assert np.abs(expected.astype(int) - plain).max() > 0


@pytest.mark.parametrize("option, value, message", [
    ("--tile", "-3", "error: --tile: -3 is not a tile size: give 0 (the whole image at once) or a tile side"),
    ("--scale", "0", "error: --scale: 0 is not a scale"),
    ("--quality", "101", "error: --quality: 101 is out of range: JPEG quality is 1 to 100"),
])
def test_bad_numbers_say_what_was_given_and_what_is_allowed(tmp_path, weights, capsys, option, value, message):
    src = write(tmp_path / "a.png", smooth_rgb())
    code, err = run([src, "-o", tmp_path / "o.png", option, value], weights["post"], capsys)
    assert code == 2 and err.startswith(message) and len(err.strip().splitlines()) == 1, err
    assert files_in(tmp_path) == ["a.png"]


def test_missing_shipped_scale_lists_the_shipped_ones(tmp_path, capsys):
    import srcnn.upscale

    src = write(tmp_path / "a.png", smooth_rgb())
    assert srcnn.upscale.main([str(src), "-o", str(tmp_path / "o.png"), "--scale", "5"]) == 2
    err = capsys.readouterr().err
    assert "srcnn_x5.h5: checkpoint not found (--scale 5 given; shipped weights: x2, x3, x4;" in err
    assert len(err.strip().splitlines()) == 1
