"""SRGAN loss objects on known inputs."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.layers import Rescale
from srgan.losses import (
    AdversarialLoss, DiscriminatorLoss, PixelL1, PixelMSE, TotalVariation, VGGContentLoss, content_loss,
)


def images(value, shape=(2, 8, 8, 3)):
    return tf.fill(shape, float(value))


def identity_extractor():
    inp = keras.Input((None, None, 3))
    return keras.Model(inp, {"conv2_2": Rescale(1.0)(inp)})


def test_pixel_mse():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    assert float(PixelMSE()(x, x)) == 0.0
    assert float(PixelMSE()(images(0), images(0.5))) == pytest.approx(0.25)
    assert float(PixelMSE(weight=4)(images(0), images(0.5))) == pytest.approx(1.0)


def test_pixel_l1():
    assert float(PixelL1()(images(0), images(0.5))) == pytest.approx(0.5)
    assert float(PixelL1(weight=4)(images(0.25), images(0.5))) == pytest.approx(1.0)
    assert isinstance(content_loss("l1"), PixelL1)


def test_vgg_content_loss_scales_features_by_1_over_12_75():
    loss = VGGContentLoss(identity_extractor(), layer="conv2_2")
    # [-1, 1] -> [0, 1]: HR -1 -> 0, SR 1 -> 1, so feature difference 1 scaled by 1/12.75
    assert float(loss(images(-1), images(1))) == pytest.approx((1 / 12.75) ** 2, rel=1e-5)
    assert float(loss(images(0.3), images(0.3))) == 0.0
    # 0 -> 0.5 and 1 -> 1: difference 0.5
    assert float(VGGContentLoss(identity_extractor(), "conv2_2", weight=2)(images(0), images(1))) == \
        pytest.approx(2 * (0.5 / 12.75) ** 2, rel=1e-5)


def test_vgg_content_loss_gradient_reaches_sr_only():
    loss = VGGContentLoss(identity_extractor(), layer="conv2_2")
    hr, sr = tf.Variable(images(0)), tf.Variable(images(0.5))
    with tf.GradientTape(persistent=True) as tape:
        value = loss(hr, sr)
    assert tape.gradient(value, hr) is None
    assert float(tf.reduce_sum(tf.abs(tape.gradient(value, sr)))) > 0


def test_adversarial_loss():
    assert float(AdversarialLoss(weight=1)(tf.constant([[30.0]]))) == pytest.approx(0, abs=1e-9)
    assert float(AdversarialLoss()(tf.constant([[0.0], [0.0]]))) == pytest.approx(1e-3 * math.log(2))
    assert float(AdversarialLoss(weight=1)(tf.constant([[-30.0]]))) == pytest.approx(30, rel=1e-6)


def test_discriminator_loss():
    assert float(DiscriminatorLoss()(tf.constant([[30.0]]), tf.constant([[-30.0]]))) == pytest.approx(0, abs=1e-9)
    assert float(DiscriminatorLoss()(tf.constant([[0.0]]), tf.constant([[0.0]]))) == pytest.approx(2 * math.log(2))
    assert float(DiscriminatorLoss()(tf.constant([[-30.0]]), tf.constant([[-30.0]]))) == pytest.approx(30, rel=1e-6)


def test_total_variation():
    assert float(TotalVariation()(images(0.7))) == 0.0
    x = np.zeros((1, 4, 4, 1), np.float32)
    x[0, :, 2:] = 1.0  # one vertical edge: 4 horizontal steps of 1
    assert float(TotalVariation(weight=1)(x)) == pytest.approx(4.0)
    assert float(TotalVariation()(x)) == pytest.approx(4 * 2e-8)


def test_content_loss_by_name():
    assert isinstance(content_loss("mse"), PixelMSE)
    with pytest.raises(ValueError):
        content_loss("vgg33")


@pytest.mark.parametrize("name,layer", [("vgg22", "conv2_2"), ("vgg54", "conv5_4")])
def test_content_loss_vgg_random_weights(name, layer):
    loss = content_loss(name, vgg_weights=None)
    assert isinstance(loss, VGGContentLoss) and loss.layer == layer
    x = np.random.default_rng(1).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    assert float(loss(x, x)) == 0.0
    assert float(loss(x, -x)) > 0
