import h5py
import keras
import numpy as np
import pytest

import common  # noqa: F401

from common import vgg
from common.vgg import VGGPreprocess, VGGWeightsUnavailable, vgg_features


def images(n=1, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, 3)).astype(np.float32)


def test_layer_selection_shapes_and_trunk_depth():
    model = vgg_features(("conv2_2", "conv5_4"), weights=None)
    out = model(images(size=32), training=False)
    assert isinstance(out, dict) and set(out) == {"conv2_2", "conv5_4"}
    assert tuple(out["conv2_2"].shape) == (1, 16, 16, 128)
    assert tuple(out["conv5_4"].shape) == (1, 2, 2, 512)
    assert not model.trainable and not model.trainable_weights

    shallow = vgg_features("block2_conv2", weights=None)  # Keras names are accepted too
    names = [layer.name for layer in shallow.layers]
    assert "block2_conv2" in names and "block2_pool" not in names and "block3_conv1" not in names
    single = shallow(images(size=20), training=False)
    assert list(single) == ["conv2_2"] and tuple(single["conv2_2"].shape) == (1, 10, 10, 128)


@pytest.mark.parametrize("bad", ["conv6_1", "conv1_3", "pool5", "fc1"])
def test_unknown_layer_names(bad):
    with pytest.raises(ValueError, match="unknown VGG19 layer"):
        vgg_features((bad,), weights=None)


def test_before_activation_is_the_pre_relu_output():
    after = vgg_features(("conv1_2", "conv3_4"), weights=None)
    before = vgg_features(("conv1_2", "conv3_4"), before_activation=True, weights=None)
    before.set_weights(after.get_weights())
    x = images(2, 24, seed=1)
    fa, fb = after(x, training=False), before(x, training=False)
    for name in ("conv1_2", "conv3_4"):
        a, b = np.asarray(fa[name]), np.asarray(fb[name])
        assert a.min() >= 0 and b.min() < 0
        np.testing.assert_allclose(np.maximum(b, 0), a, rtol=1e-6, atol=1e-6)


def test_preprocessing_matches_keras_vgg19():
    x = images(2, 8, seed=2)
    ours = np.asarray(VGGPreprocess()(x))
    manual = x[..., ::-1] * 255.0 - np.array([103.939, 116.779, 123.68], np.float32)
    np.testing.assert_allclose(ours, manual, rtol=1e-6, atol=1e-4)
    theirs = keras.applications.vgg19.preprocess_input(x * 255.0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-4)
    # Serializable (no Lambda): the whole model round-trips through its config.
    model = vgg_features(("conv1_1",), weights=None)
    clone = keras.models.model_from_json(model.to_json())
    assert isinstance(clone.get_layer("vgg_preprocess"), VGGPreprocess)


def reference_features(keras_vgg, layer, x):
    """Keras' own VGG19 (fused ReLU) on Keras' own preprocessing."""
    sub = keras.Model(keras_vgg.input, keras_vgg.get_layer(layer).output)
    return np.asarray(sub(keras.applications.vgg19.preprocess_input(x * 255.0), training=False))


def write_legacy_h5(model, path, extra=(), drop=()):
    """The layout of Keras' published vgg19 ...h5 files (Keras 2 weights format)."""
    layers = [layer for layer in model.layers if layer.name not in drop]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode() for layer in layers] + [n.encode() for n in extra]
        for name in extra:  # e.g. the classifier of the with-top file
            f.create_group(name).attrs["weight_names"] = [f"{name}_W_1:0".encode()]
            f[name].create_dataset(f"{name}_W_1:0", data=np.zeros((3, 2), np.float32))
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for layer in layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}_W_1:0", f"{layer.name}_b_1:0"][: len(layer.weights)]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for n, value in zip(names, layer.get_weights()):
                group.create_dataset(n, data=value)


@pytest.mark.parametrize("fmt", ["legacy.h5", "weights.h5"])
def test_weights_file_reproduces_keras_vgg19(tmp_path, fmt):
    keras.utils.set_random_seed(0)
    source = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    path = tmp_path / f"vgg19.{fmt}"
    if fmt == "legacy.h5":
        write_legacy_h5(source, path, extra=("flatten", "fc1"))
    else:
        source.save_weights(path)
    x = images(1, 16, seed=3)
    model = vgg_features(("conv1_2", "conv2_1"), weights=str(path))
    out = model(x, training=False)
    for name, keras_name in (("conv1_2", "block1_conv2"), ("conv2_1", "block2_conv1")):
        np.testing.assert_allclose(out[name], reference_features(source, keras_name, x),
                                   rtol=1e-4, atol=1e-3)


def test_missing_or_bad_weights_file_gives_one_clear_line(tmp_path):
    missing = tmp_path / "nope.h5"
    with pytest.raises(VGGWeightsUnavailable) as err:
        vgg_features(weights=str(missing))
    assert str(err.value) == f"VGG19 weights file not found: {missing}"
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(VGGWeightsUnavailable) as err:
        vgg_features(weights=str(junk))
    assert str(err.value).startswith(f"cannot load VGG19 weights from {junk}")
    assert "\n" not in str(err.value)
    truncated = tmp_path / "vgg16ish.h5"
    write_legacy_h5(vgg_features(weights=None), truncated, drop=("block5_conv4",))
    with pytest.raises(VGGWeightsUnavailable, match="not a VGG19 weights file .no block5_conv4"):
        vgg_features(weights=str(truncated))
    assert vgg_features(("conv4_1",), weights=str(truncated))  # only the layers used are read


def test_imagenet_offline_raises_weights_unavailable(monkeypatch):
    calls = []

    def offline(fname, origin, **kwargs):
        calls.append((fname, origin))
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(VGGWeightsUnavailable) as err:
        vgg_features(("conv5_4",))
    message = str(err.value)
    assert "\n" not in message and "--vgg-weights" in message and "not available offline" in message
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert calls == [(vgg.NOTOP_FILE, vgg.NOTOP_URL)]
