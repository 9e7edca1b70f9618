"""SRResNet and SRGAN discriminator builders on tiny configurations."""
import keras
import numpy as np
import pytest

from common.layers import PixelShuffle
from srgan.models import discriminator, srresnet


def tiny(scale=4, **kwargs):
    return srresnet(scale=scale, num_filters=8, num_blocks=1, **kwargs)


@pytest.mark.parametrize("scale", [2, 4])
def test_srresnet_output_shape(scale):
    model = tiny(scale)
    x = np.random.default_rng(0).random((2, 16, 12, 3), dtype=np.float32)
    y = model(x, training=False)
    assert tuple(y.shape) == (2, 16 * scale, 12 * scale, 3)
    assert len([l for l in model.layers if isinstance(l, PixelShuffle)]) == {2: 1, 4: 2}[scale]


def test_srresnet_rejects_unsupported_scale():
    with pytest.raises(ValueError):
        tiny(5)


def test_srresnet_parameter_count_with_shared_prelu():
    f = 8
    conv = lambda k, cin, cout: k * k * cin * cout + cout  # noqa: E731
    expected = (
        conv(9, 3, f) + f                                   # head conv + PReLU
        + 2 * conv(3, f, f) + 2 * 4 * f + f                 # one residual block (2 BN, 1 PReLU)
        + conv(3, f, f) + 4 * f                             # body conv + BN
        + 2 * (conv(3, f, 4 * f) + f)                       # two x2 upsampling steps
        + conv(9, f, 3)                                     # tail
    )
    model = tiny(4)
    assert model.count_params() == expected
    prelus = [l for l in model.layers if isinstance(l, keras.layers.PReLU)]
    assert len(prelus) == 4
    assert all(tuple(p.weights[0].shape) == (1, 1, f) for p in prelus)  # shared over H and W


def test_srresnet_without_batch_norm_and_bn_momentum():
    assert not [l for l in tiny(batch_norm=False).layers if isinstance(l, keras.layers.BatchNormalization)]
    bns = [l for l in tiny().layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(bns) == 3 and all(abs(b.momentum - 0.9) < 1e-9 for b in bns)


def test_srresnet_tanh_bounds_output():
    model = tiny(2, output_activation="tanh")
    x = np.random.default_rng(1).random((1, 8, 8, 3), dtype=np.float32) * 50
    y = model(x, training=False).numpy()
    assert y.min() >= -1 and y.max() <= 1


def test_srresnet_serializes_without_lambda(tmp_path):
    model = tiny(2)
    assert not [l for l in model.layers if isinstance(l, keras.layers.Lambda)]
    x = np.random.default_rng(2).random((1, 8, 8, 3), dtype=np.float32)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(again(x, training=False).numpy(), model(x, training=False).numpy(), atol=1e-6)


def test_discriminator_layout_and_output():
    f, patch = 8, 32
    model = discriminator(patch=patch, num_filters=f)
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert [(c.filters, c.strides[0], c.kernel_size) for c in convs] == [
        (f, 1, (3, 3)), (f, 2, (3, 3)), (2 * f, 1, (3, 3)), (2 * f, 2, (3, 3)),
        (4 * f, 1, (3, 3)), (4 * f, 2, (3, 3)), (8 * f, 1, (3, 3)), (8 * f, 2, (3, 3)),
    ]
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(bns) == 7  # no BN after the first convolution
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    assert [d.units for d in dense] == [16 * f, 1]
    assert dense[0].weights[0].shape == ((patch // 16) ** 2 * 8 * f, 16 * f)
    assert dense[1].activation is keras.activations.linear  # a logit, no sigmoid
    slopes = [l.negative_slope for l in model.layers if isinstance(l, keras.layers.LeakyReLU)]
    assert len(slopes) == 9 and np.allclose(slopes, 0.2)
    x = np.random.default_rng(3).uniform(-1, 1, (3, patch, patch, 3)).astype(np.float32)
    assert tuple(model(x, training=False).shape) == (3, 1)


def test_discriminator_paper_size():
    model = discriminator()  # 96x96, 64 filters: Dense 1024 on 6x6x512
    assert model.input_shape == (None, 96, 96, 3)
    assert model.get_layer("dense").weights[0].shape == (6 * 6 * 512, 1024)


def test_discriminator_rejects_bad_patch():
    with pytest.raises(ValueError):
        discriminator(patch=20)
