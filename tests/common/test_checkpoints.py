"""Checkpoints (X.h5 + X.weights.h5 + X.json) and the architecture registry.

The tiny builders here are also used by test_inference.py and test_upscale_cli.py.
"""
import json
import os

import keras
import numpy as np
import pytest

from common import checkpoints, registry
from common.checkpoints import CheckpointError
from common.layers import PixelShuffle


def tiny_post(filters: int = 8, scale: int = 2) -> keras.Model:
    """Two 3x3 convs and a PixelShuffle: a post-upsampling RGB model (receptive field 2 LR px)."""
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Conv2D(3 * scale * scale, 3, padding="same")(x)
    return keras.Model(inp, PixelShuffle(scale)(x))


def tiny_pre(channels: int = 1, padding: str = "valid") -> keras.Model:
    """SRCNN-like 5-1-3 convs on a bicubic-upscaled input (valid padding loses 3 px a side)."""
    inp = keras.Input((None, None, channels))
    x = keras.layers.Conv2D(8, 5, padding=padding, activation="relu")(inp)
    x = keras.layers.Conv2D(4, 1, padding=padding, activation="relu")(x)
    return keras.Model(inp, keras.layers.Conv2D(channels, 3, padding=padding)(x))


POST_META = {"architecture": "test_tiny_post", "args": {"filters": 8}, "scale": 2, "upsampling": "post",
             "color": "rgb", "input_range": [0, 1], "output_range": [0, 1], "degradation": "bicubic",
             "training_data": "none (test)", "steps": 0, "val_psnr": None}
PRE_META = {"architecture": "test_tiny_pre", "args": {}, "scale": 2, "upsampling": "pre", "color": "y",
            "input_range": [0, 1], "output_range": [0, 1]}


@pytest.fixture
def registered():
    registry.register("test_tiny_post", tiny_post)
    registry.register("test_tiny_pre", tiny_pre)
    yield
    registry.unregister("test_tiny_post")
    registry.unregister("test_tiny_pre")


def _x(channels=3, size=12, seed=0):
    return np.random.default_rng(seed).random((1, size, size, channels)).astype("float32")


@pytest.mark.parametrize("load_as", ["m.h5", "m.weights.h5", "m"])
def test_round_trip_gives_identical_outputs(tmp_path, registered, load_as):
    model = tiny_post()
    written = checkpoints.save_model(model, tmp_path / "m.h5", POST_META)
    assert written == tmp_path / "m.h5"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5", "m.json", "m.weights.h5"]
    loaded, meta = checkpoints.load_model(tmp_path / load_as)
    assert loaded is not model
    assert any(isinstance(layer, PixelShuffle) for layer in loaded.layers)
    np.testing.assert_array_equal(model(_x(), training=False), loaded(_x(), training=False))
    assert meta["architecture"] == "test_tiny_post" and meta["scale"] == 2
    assert meta["keras_version"] == keras.__version__
    assert meta["parameters"] == model.count_params()
    assert "created" in meta and meta["val_psnr"] is None


def test_whole_model_reloads_with_plain_keras(tmp_path):
    model = tiny_post()
    checkpoints.save_model(model, tmp_path / "m", {"architecture": "test_tiny_post", "scale": 2})
    plain = keras.models.load_model(tmp_path / "m.h5", compile=False)
    np.testing.assert_array_equal(model(_x()), plain(_x()))
    assert checkpoints.read_meta(tmp_path / "m.weights.h5")["scale"] == 2


def test_h5_without_json_loads_with_empty_meta(tmp_path):
    checkpoints.save_model(tiny_post(), tmp_path / "m.h5", POST_META)
    (tmp_path / "m.json").unlink()
    _, meta = checkpoints.load_model(tmp_path / "m.h5")
    assert meta == {}


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        checkpoints.load_model(tmp_path / "nothing.h5")
    with pytest.raises(CheckpointError, match="not found"):
        checkpoints.load_model(tmp_path / "nothing")


def test_zero_byte_file(tmp_path):
    (tmp_path / "m.h5").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty file"):
        checkpoints.load_model(tmp_path / "m.h5")


def test_not_hdf5(tmp_path):
    (tmp_path / "m.h5").write_bytes(b"<html>404 not found</html>" * 10)
    with pytest.raises(CheckpointError, match="not an HDF5 file"):
        checkpoints.load_model(tmp_path / "m.h5")


@pytest.mark.parametrize("name", ["m.h5", "m.weights.h5"])
def test_truncated_file(tmp_path, registered, name):
    checkpoints.save_model(tiny_post(), tmp_path / "m.h5", POST_META)
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot") as info:
        checkpoints.load_model(tmp_path / name)
    assert "\n" not in str(info.value) and name in str(info.value)


def test_weights_of_another_architecture(tmp_path, registered):
    checkpoints.save_model(tiny_post(filters=8), tmp_path / "m.h5", POST_META)
    with pytest.raises(CheckpointError, match="holds a different architecture"):
        checkpoints.load_model(tmp_path / "m.weights.h5", meta={**POST_META, "args": {"filters": 4}})
    meta = json.loads((tmp_path / "m.json").read_text())
    meta.update(architecture="test_tiny_pre", args={"channels": 3, "padding": "same"})
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="holds a different architecture") as info:
        checkpoints.load_model(tmp_path / "m.weights.h5")
    assert "\n" not in str(info.value)


def test_whole_model_disagreeing_with_its_json(tmp_path):
    checkpoints.save_model(tiny_post(filters=8), tmp_path / "m.h5", POST_META)
    checkpoints.save_model(tiny_post(filters=4), tmp_path / "other.h5", POST_META)
    os.replace(tmp_path / "other.h5", tmp_path / "m.h5")
    with pytest.raises(CheckpointError, match="holds a different architecture"):
        checkpoints.load_model(tmp_path / "m.h5")


def test_weights_need_valid_json(tmp_path, registered):
    checkpoints.save_model(tiny_post(), tmp_path / "m.h5", POST_META)
    (tmp_path / "m.json").write_text('{"architecture": "test_tiny_post",')
    with pytest.raises(CheckpointError, match="invalid JSON"):
        checkpoints.load_model(tmp_path / "m.weights.h5")
    (tmp_path / "m.json").unlink()
    with pytest.raises(CheckpointError, match="metadata file not found"):
        checkpoints.load_model(tmp_path / "m.weights.h5")
    (tmp_path / "m.json").write_text(json.dumps({**POST_META, "architecture": "no_such_net"}))
    with pytest.raises(CheckpointError, match="unknown architecture"):
        checkpoints.load_model(tmp_path / "m.weights.h5")


def test_failed_save_leaves_nothing_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    old = tiny_post()
    checkpoints.save_model(old, tmp_path / "m.h5", {**POST_META, "steps": 1})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_save_weights(self, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save_weights", broken_save_weights)
    with pytest.raises(OSError, match="No space"):
        checkpoints.save_model(tiny_post(), tmp_path / "m.h5", {**POST_META, "steps": 2})
    with pytest.raises(OSError):
        checkpoints.save_model(tiny_post(), tmp_path / "new.h5", POST_META)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # no temporaries, no new.*, m.* untouched


def test_saved_files_are_not_private(tmp_path):
    checkpoints.save_model(tiny_post(), tmp_path / "m.h5", POST_META)
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_registry():
    assert registry.ARCHITECTURES["srcnn"] == "srcnn.models:srcnn"
    assert registry.ARCHITECTURES["srresnet"] == "srgan.models:srresnet"
    assert registry.ARCHITECTURES["rrdb_generator"] == "esrgan.models:rrdb_generator"
    assert registry.ARCHITECTURES["srgan_discriminator"] == "srgan.models:discriminator"
    assert registry.ARCHITECTURES["esrgan_discriminator"] == "esrgan.models:discriminator"
    with pytest.raises(registry.UnknownArchitecture, match="unknown architecture 'nope'"):
        registry.build("nope")
    registry.register("test_reg", lambda filters=3: tiny_post(filters))
    try:
        assert registry.build("test_reg", filters=5).count_params() == tiny_post(5).count_params()
        assert "test_reg" in registry.names()
    finally:
        registry.unregister("test_reg")
    assert "test_reg" not in registry.names()


# --- hostile metadata (issue 34) -----------------------------------------------------------------------------

BAD_META = [
    ('"scale": 0', '"scale" must be an integer from 1 to 8, not 0'),
    ('"scale": -3', '"scale" must be an integer from 1 to 8, not -3'),
    ('"scale": 2.5', '"scale" must be an integer from 1 to 8, not 2.5'),
    ('"scale": "2"', '"scale" must be an integer from 1 to 8, not "2"'),
    ('"scale": true', '"scale" must be an integer from 1 to 8, not true'),
    ('"scale": 1e999', '"scale" must be an integer from 1 to 8, not inf'),
    ('"scale": 1' + "0" * 400, "invalid JSON (integer of 401 digits)"),
    ('"parameters": "abc"', '"parameters" must be an integer from 0 to 10,000,000,000, not "abc"'),
    ('"parameters": 1e999', '"parameters" must be an integer'),
    ('"args": {"filters": 1000000000000}', '"args"."filters" must be an integer from -1 to 4096'),
    ('"args": {"filters": NaN}', '"args"."filters" must be a finite number'),
    ('"args": {"filters": {"a": 1}}', '"args"."filters" must be a number, text'),
    ('"args": [8]', '"args" must be an object'),
    ('"architecture": 5', '"architecture" must be a name'),
    ('"upsampling": "sideways"', "\"upsampling\" must be 'pre' or 'post'"),
    ('"input_range": [0, 0]', '"input_range" must be [low, high]'),
    ('"output_range": [0, Infinity]', '"output_range" must be [low, high]'),
    ('"trained_scales": [2, 0]', '"trained_scales" must be a list of scales'),
    ('"notes": ' + "[" * 100_000 + "]" * 100_000, "metadata nested 100001 levels deep (at most 32)"),
    ('"notes": "' + "x" * (1 << 20) + '"', "metadata is over 1024 KB"),
]


@pytest.mark.parametrize("field,message", BAD_META, ids=[m[:30] for _, m in BAD_META])
def test_bad_metadata_values_are_one_line_naming_the_field(tmp_path, registered, field, message):
    checkpoints.save_model(tiny_post(), tmp_path / "m.h5", POST_META)
    text = json.dumps({k: v for k, v in POST_META.items() if f'"{k}"' not in field})
    (tmp_path / "m.json").write_text(text[:-1] + ", " + field + "}")
    for name in ("m.h5", "m.weights.h5"):
        with pytest.raises(CheckpointError) as caught:
            checkpoints.load_model(tmp_path / name)
        assert str(caught.value).startswith(f"{tmp_path / 'm.json'}: ") and message in str(caught.value)
        assert "\n" not in str(caught.value)


def test_metadata_for_people_may_hold_anything_finite_or_not(tmp_path, registered):
    meta = {**POST_META, "val_psnr": float("nan"), "history": [{"step": 1, "psnr": [1.5, {"x": None}]}]}
    checkpoints.save_model(tiny_post(), tmp_path / "m.h5", meta)  # json writes NaN as NaN
    loaded = checkpoints.load_model(tmp_path / "m.weights.h5")[1]
    assert np.isnan(loaded["val_psnr"]) and loaded["history"][0]["psnr"][1] == {"x": None}


def test_bad_metadata_through_the_upscale_command(tmp_path, registered, capsys):
    from common import upscale_cli
    from common.images import write_image

    checkpoints.save_model(tiny_post(), tmp_path / "m.h5", POST_META)
    (tmp_path / "m.json").write_text(json.dumps({**POST_META, "scale": 0}))
    write_image(tmp_path / "a.png", _x()[0])
    code = upscale_cli.main([str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"), "--weights",
                             str(tmp_path / "m.h5"), "--backend", "tensorflow", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and '"scale" must be an integer from 1 to 8, not 0' in err
    assert not (tmp_path / "b.png").exists()
