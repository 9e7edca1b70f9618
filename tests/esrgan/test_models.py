import keras
import numpy as np
import pytest

import common  # noqa: F401

from esrgan.models import discriminator, keras_name, rrdb_block, rrdb_generator

TINY = dict(num_filters=8, num_blocks=1, growth=4)


def lr(n=1, h=12, w=10, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, h, w, 3)).astype(np.float32)


def rrdbnet_parameters(nf, nb, gc, num_up):
    """Parameter count of the official RRDBNet, written out from its definition."""
    conv = lambda cin, cout: 9 * cin * cout + cout  # noqa: E731
    rdb = sum(conv(nf + i * gc, gc) for i in range(4)) + conv(nf + 4 * gc, nf)
    return conv(3, nf) + nb * 3 * rdb + conv(nf, nf) * (2 + num_up) + conv(nf, 3)


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_generator_shapes_and_parameter_count(scale):
    model = rrdb_generator(scale=scale, **TINY)
    out = model(lr(), training=False)
    assert tuple(out.shape) == (1, 12 * scale, 10 * scale, 3)
    num_up = {1: 0, 2: 1, 4: 2, 8: 3}[scale]
    assert model.count_params() == rrdbnet_parameters(8, 1, 4, num_up)


def test_paper_configuration_has_the_official_parameter_count():
    assert rrdbnet_parameters(64, 23, 32, 2) == 16_697_987  # RRDB_ESRGAN_x4.pth


def test_generator_layer_names_map_to_official_names_and_no_batch_norm():
    model = rrdb_generator(scale=4, num_filters=8, num_blocks=2, growth=4)
    names = {layer.name for layer in model.layers if layer.weights}
    official = {"conv_first", "trunk_conv", "upconv1", "upconv2", "HRconv", "conv_last"}
    official |= {f"RRDB_trunk.{n}.RDB{k}.conv{j}" for n in range(2) for k in (1, 2, 3) for j in range(1, 6)}
    assert names == {keras_name(n) for n in official}
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


def test_dense_block_convs_use_scaled_kaiming_init():
    model = rrdb_generator(num_filters=64, num_blocks=1, growth=32, scale=1)
    kernel, bias = model.get_layer("RRDB_trunk_0_RDB1_conv5").get_weights()
    fan_in = 3 * 3 * (64 + 4 * 32)
    assert kernel.std() == pytest.approx(0.1 * np.sqrt(2 / fan_in), rel=0.05)
    assert not bias.any()
    first = model.get_layer("conv_first").get_weights()[0]
    assert first.std() > 3 * 0.1 * np.sqrt(2 / 27)  # the other convs keep PyTorch's default scale


def test_rrdb_is_residual_in_residual():
    inp = keras.Input((None, None, 8))
    model = keras.Model(inp, rrdb_block(inp, num_filters=8, growth=4, name="b"))
    x = np.random.default_rng(1).normal(size=(1, 6, 6, 8)).astype(np.float32)
    assert not np.allclose(model(x).numpy(), 1.2 * x, atol=1e-3)
    for k in (1, 2, 3):  # with every conv5 zeroed each dense block is the identity
        conv5 = model.get_layer(f"b_RDB{k}_conv5")
        conv5.set_weights([np.zeros_like(w) for w in conv5.get_weights()])
    np.testing.assert_allclose(model(x).numpy(), 1.2 * x, rtol=1e-6)


def test_generator_saves_and_reloads_as_h5(tmp_path):
    model = rrdb_generator(scale=2, unshuffle=2, **TINY)
    path = tmp_path / "g.h5"
    model.save(path)
    again = keras.models.load_model(path, compile=False)
    x = lr(h=8, w=6)
    np.testing.assert_array_equal(model(x).numpy(), again(x).numpy())
    assert tuple(again(x).shape) == (1, 16, 12, 3)


def test_invalid_scale_is_rejected():
    with pytest.raises(ValueError, match="scale"):
        rrdb_generator(scale=3, **TINY)


def test_discriminator_structure():
    model = discriminator(patch=64, num_filters=8)
    out = model(np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype(np.float32), training=False)
    assert tuple(out.shape) == (2, 1)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.name for c in convs] == [f"conv{i}_{j}" for i in range(5) for j in (0, 1)]
    assert [c.filters for c in convs] == [8, 8, 16, 16, 32, 32, 64, 64, 64, 64]
    assert [c.strides[0] for c in convs] == [1, 2] * 5
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == 9
    assert tuple(model.get_layer("flatten").output.shape) == (None, 2 * 2 * 64)
    assert model.get_layer("linear1").units == 100
    with pytest.raises(ValueError, match="multiple of 32"):
        discriminator(patch=100)


def test_paper_discriminator_reaches_4x4x512():
    model = discriminator(patch=128)
    assert tuple(model.get_layer("flatten").output.shape) == (None, 4 * 4 * 512)
