"""Offline perceptual losses: normalised feature distances, discriminator trunks, random VGG19."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from common.losses import FeatureLoss, layer_distance
from common.perceptual import feeding_layer, hidden_layers
from common.vgg import vgg_features


def test_normalised_distance_is_a_relative_error_independent_of_the_feature_scale():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(2, 4, 4, 8)).astype("float32")
    fake = real + 0.1 * rng.normal(size=real.shape).astype("float32")
    for distance in ("l1", "l2"):
        raw = float(layer_distance(real, fake, distance))
        small = float(layer_distance(1e-4 * real, 1e-4 * fake, distance, normalise=True))
        large = float(layer_distance(1e3 * real, 1e3 * fake, distance, normalise=True))
        assert small == pytest.approx(large, rel=1e-4)
        assert float(layer_distance(1e-4 * real, 1e-4 * fake, distance)) < 1e-3 * raw  # unnormalised: tiny
    # mean (0.1 n)^2 / mean r^2 with r, n ~ N(0, 1): about 0.01
    assert float(layer_distance(real, fake, "l2", normalise=True)) == pytest.approx(0.01, rel=0.3)


def test_feature_loss_sums_layers_and_sends_gradient_to_sr_only():
    inp = keras.Input((None, None, 3))
    network = keras.Model(inp, {"a": inp * 2.0, "b": inp})
    loss = FeatureLoss(network, "l1", weight=3.0, to_input=lambda x: x + 1.0)
    hr, sr = tf.Variable(tf.zeros((1, 4, 4, 3))), tf.Variable(tf.fill((1, 4, 4, 3), 0.5))
    with tf.GradientTape() as tape:
        value = loss(hr, sr)
    assert float(value) == pytest.approx(3.0 * (1.0 + 0.5))
    g_hr, g_sr = tape.gradient(value, [hr, sr])
    assert g_hr is None and float(tf.reduce_sum(tf.abs(g_sr))) > 0


def test_hidden_layers_share_the_discriminators_weights_and_take_any_size():
    from srgan.models import discriminator

    keras.utils.set_random_seed(0)
    disc = discriminator(patch=32, num_filters=4)
    trunk = hidden_layers(disc, ("lrelu1", "lrelu3"))
    x = tf.random.uniform((1, 48, 40, 3))
    out = trunk(x)
    assert out["lrelu1"].shape == (1, 24, 20, 4) and out["lrelu3"].shape == (1, 12, 10, 8)
    conv = disc.get_layer("conv1")
    conv.kernel.assign(conv.kernel * 2.0)  # a discriminator update moves its trunk too
    assert not np.allclose(trunk(x)["lrelu1"], out["lrelu1"])
    with pytest.raises(ValueError, match="no convolutional layer 'dense'"):
        hidden_layers(disc, ("dense",))


def test_feeding_layer_names_what_an_activation_acts_on():
    from srgan.models import discriminator

    disc = discriminator(patch=32, num_filters=4)
    assert feeding_layer(disc, "lrelu0") == "conv0"  # no BN in the first block
    assert feeding_layer(disc, "lrelu1") == "bn1"
    assert feeding_layer(disc, "bn1") == "conv1"


def test_random_vgg_he_normal_keeps_deep_features_at_a_usable_scale():
    x = tf.random.uniform((1, 32, 32, 3), seed=1)
    keras.utils.set_random_seed(0)
    glorot = vgg_features(("conv5_4",), weights=None)(x)["conv5_4"]
    keras.utils.set_random_seed(0)
    he = vgg_features(("conv5_4",), weights=None, random_init="he_normal")(x)["conv5_4"]
    rms = lambda t: float(tf.sqrt(tf.reduce_mean(tf.square(t))))  # noqa: E731
    assert rms(he) > 1e3 * rms(glorot)  # 16 halvings of the variance vs none
    assert 1.0 < rms(he) < 1e5


def test_low_pass_loss_sees_colour_but_not_detail_inside_blocks():
    from common.losses import LowPassLoss

    hr = tf.fill((1, 8, 8, 3), 0.5)
    detail = np.tile(np.array([[1.0, -1.0], [-1.0, 1.0]], "float32"), (4, 4))[None, :, :, None] * 0.2
    loss = LowPassLoss(4, weight=2.0)
    assert float(loss(hr, hr + detail)) == pytest.approx(0.0, abs=1e-7)  # zero-mean in every 4x4 block
    assert float(loss(hr, hr + tf.constant([0.0, 0.03, 0.0]))) == pytest.approx(2.0 * 0.01, rel=1e-5)
