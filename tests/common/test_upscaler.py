"""The Upscaler object: options, grey/RGBA/16-bit through the command on every backend, the backend
named once, self-ensemble, scale for bare checkpoints, grey RGB kept grey, mirrored image border."""
import numpy as np
import pytest

from common import backends, checkpoints, upscale_cli
from common.images import read_image, to_uint8, write_image
from common.tiling import dihedral, tiled_upscale, undo_dihedral
from common.upscaler import UpscaleOptions, Upscaler, is_grey, upscale
from tests.common.test_checkpoints import POST_META, PRE_META, tiny_post, tiny_pre

RNG = np.random.default_rng(11)
IMAGE = RNG.random((21, 17, 3)).astype(np.float32)
BACKENDS = ["tensorflow"] + [b for b in ("openvino", "onnxruntime") if backends.installed(b)]


@pytest.fixture
def checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("SR_CACHE_DIR", str(tmp_path / "cache"))
    return checkpoints.save_model(tiny_post(), tmp_path / "post_x2.h5", POST_META)


def test_options_dataclass_builds_the_same_upscaler(checkpoint):
    options = UpscaleOptions(backend="tensorflow", tile=12, tile_overlap=2, batch_size=3)
    a = Upscaler.from_options(str(checkpoint), options)
    b = Upscaler(str(checkpoint), backend="tensorflow", tile=12, tile_overlap=2, batch_size=3)
    assert (a.tile, a.tile_overlap, a.batch_size, a.backend) == (12, 2, 3, "tensorflow")
    np.testing.assert_array_equal(a(IMAGE), b(IMAGE))
    model, meta = checkpoints.load_model(checkpoint)
    np.testing.assert_array_equal(a(IMAGE), upscale(IMAGE, model, meta, tile=12, tile_overlap=2, batch_size=3))


def test_self_ensemble_is_the_mean_of_the_eight_passes(checkpoint):
    single = Upscaler(str(checkpoint), backend="tensorflow", tile=0)
    ensemble = Upscaler(single.prepared, tile=0, self_ensemble=True)
    expected = np.mean([undo_dihedral(single(np.ascontiguousarray(dihedral(IMAGE, k))), k) for k in range(8)], axis=0)
    np.testing.assert_allclose(ensemble(IMAGE), expected, atol=1e-6)


def test_grey_2d_input_and_bad_shapes(checkpoint):
    upscaler = Upscaler(str(checkpoint), backend="tensorflow")
    grey = upscaler(IMAGE[..., 0])
    assert grey.shape == (42, 34)
    with pytest.raises(ValueError, match="expected an"):
        upscaler(np.zeros((4, 4, 2), np.float32))


def test_grey_rgb_input_takes_the_grey_path(checkpoint):
    """R=G=B in, R=G=B out: the 1-channel result repeated; one coloured pixel and the rule is off."""
    upscaler = Upscaler(str(checkpoint), backend="tensorflow", tile=12, tile_overlap=2)
    grey = np.repeat(IMAGE[..., :1], 3, axis=2)
    out = upscaler(grey)
    assert out.shape == (42, 34, 3)
    np.testing.assert_array_equal(out, np.repeat(upscaler(IMAGE[..., :1]), 3, axis=2))
    tinted = grey.copy()
    tinted[5, 3, 2] += 0.01  # off the coarse grid is_grey looks at first
    assert is_grey(grey) and not is_grey(tinted) and not is_grey(IMAGE)
    assert np.abs(upscaler(tinted)[..., 0] - upscaler(tinted)[..., 2]).max() > 1e-3  # a random net adds colour


def test_image_border_is_mirrored_not_zero_padded(checkpoint):
    """The model runs on the image mirrored by its context (2 LR px here) and is cropped back: the
    border pixels change, the interior stays exactly what the model made before."""
    upscaler = Upscaler(str(checkpoint), backend="tensorflow", tile=0)
    run = upscaler.prepared.runner
    out = upscaler(IMAGE)
    mirrored = np.pad(IMAGE, ((2, 2), (2, 2), (0, 0)), mode="symmetric")
    np.testing.assert_allclose(out, tiled_upscale(mirrored, run, upscaler.spec, 0)[4:-4, 4:-4], atol=1e-6)
    plain = tiled_upscale(IMAGE, run, upscaler.spec, 0)
    np.testing.assert_allclose(out[4:-4, 4:-4], plain[4:-4, 4:-4], atol=1e-6)
    assert np.abs(out[:, :4] - plain[:, :4]).max() > 1e-3
    tiled = Upscaler(upscaler.prepared, tile=9, tile_overlap=2)(IMAGE)
    assert np.abs(tiled - out).max() <= 1 / 255


def test_pre_upsampling_y_model_keeps_its_interior():
    model = tiny_pre(1, "valid")
    upscaler = Upscaler(model, PRE_META, backend="tensorflow", tile=0)
    out, plain = upscaler(IMAGE), tiled_upscale(IMAGE, upscaler.prepared.runner, upscaler.spec, 0)
    c = 2 * upscaler.spec.margin  # the bicubic and model context, in output px
    assert out.shape == plain.shape == (42, 34, 3)
    np.testing.assert_allclose(out[c:-c, c:-c], plain[c:-c, c:-c], atol=1e-6)


def test_scale_is_assumed_only_when_the_metadata_has_none():
    model = tiny_pre(1, "valid")
    meta = {k: v for k, v in PRE_META.items() if k != "scale"}
    with pytest.raises(ValueError, match="lacks the 'scale'"):
        Upscaler(model, meta, backend="tensorflow")
    assert Upscaler(model, meta, backend="tensorflow", scale=3).scale == 3
    assert Upscaler(model, PRE_META, backend="tensorflow", scale=3).scale == 2  # the metadata wins


@pytest.mark.parametrize("backend", BACKENDS[1:])
def test_grey_rgba_16bit_files_on_every_backend(backend, checkpoint, tmp_path, capsys):
    """The command's image paths (grey, alpha, 16-bit) give TensorFlow's pixels on each backend."""
    import cv2

    inputs = {"grey.png": to_uint8(RNG.random((19, 23))),
              "rgba.png": np.dstack([to_uint8(RNG.random((19, 23, 3))), to_uint8(RNG.random((19, 23)))]),
              "deep.png": (RNG.random((19, 23, 3)) * 65535).astype(np.uint16)}
    for name, data in inputs.items():
        cv2.imwrite(str(tmp_path / name), data)
    results = {}
    for engine in ("tensorflow", backend):
        out = tmp_path / engine
        code = upscale_cli.main([str(tmp_path / n) for n in inputs] + ["-o", str(out), "--weights", str(checkpoint),
                                                                         "--backend", engine, "--tile", "11"])
        err = capsys.readouterr().err
        assert code == 0, err
        assert sum(line.startswith("backend: ") for line in err.splitlines()) == 1  # once, not per tile
        assert f"backend: {engine} " in err
        results[engine] = {n: cv2.imread(str(out / f"{n[:-4]}_x2.png"), cv2.IMREAD_UNCHANGED) for n in inputs}
    for name in inputs:
        a, b = results["tensorflow"][name], results[backend][name]
        assert a.shape == b.shape and a.dtype == b.dtype == inputs[name].dtype
        assert a.shape[:2] == (38, 46) and a.shape[2:] == inputs[name].shape[2:]
        step = 257 if a.dtype == np.uint16 else 1  # 1/255 of the range
        assert np.abs(a.astype(int) - b.astype(int)).max() <= step, name


def test_quiet_command_prints_nothing(checkpoint, tmp_path, capsys):
    write_image(tmp_path / "a.png", to_uint8(IMAGE))
    code = upscale_cli.main([str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"), "--weights", str(checkpoint), "-q"])
    assert code == 0 and capsys.readouterr().err == ""
    assert read_image(tmp_path / "b.png").shape == (42, 34, 3)
