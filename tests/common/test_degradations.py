import numpy as np
import pytest
import tensorflow as tf

from common.degradations import degrade, degrade_tf, imresize, upsample_bicubic
from common.evaluate import bicubic_upscaler, evaluate_model


def smooth_image(h=48, w=40, c=3, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / 8.0
    img = np.stack([np.sin(x * (i + 1) + y) * 0.4 + 0.5 for i in range(c)], -1)
    return (img + rng.normal(0, 0.02, img.shape)).clip(0, 1).astype(np.float32)


@pytest.mark.parametrize("name", ["bicubic", "gaussian", "nearest"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shapes(name, scale):
    hr = smooth_image(48, 36)
    lr = degrade(hr, scale, name)
    assert lr.shape == (48 // scale, 36 // scale, 3)
    lr_tf = degrade_tf(tf.constant(hr), scale, name).numpy()
    assert lr_tf.shape == lr.shape


def test_imresize_constant_and_linear_ramp():
    # a constant stays constant; MATLAB's cubic reproduces a linear ramp away from the edges
    assert np.allclose(imresize(np.full((12, 12), 0.3), 0.5), 0.3)
    ramp = np.tile(np.arange(32, dtype=float), (8, 1))
    down = imresize(ramp, 0.5)
    # output pixel j (0-based) is centred at input coordinate 2j + 0.5
    assert np.allclose(down[:, 2:-2], 2 * np.arange(16)[2:-2] + 0.5, atol=1e-9)


def test_imresize_hand_computed_upsampling_weights():
    # x2 upsampling: output pixel centres at -0.25 and +0.25 of input pixels, Keys a=-0.5
    x = np.zeros(9)
    x[4] = 1.0
    up = imresize(x[None, :], 2.0)[0]

    def keys(t):
        t = abs(t)
        return 1.5 * t**3 - 2.5 * t**2 + 1 if t <= 1 else -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2

    # output index 9 is centred at input 4.25 (0-based): weight of input 4 is keys(0.25)
    assert up[9] == pytest.approx(keys(0.25), abs=1e-12)
    assert up[8] == pytest.approx(keys(0.25), abs=1e-12)
    assert up[10] == pytest.approx(keys(0.75), abs=1e-12)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_tf_bicubic_agrees_with_matlab_inside(scale):
    # TF pads differently at the edges; the kernel (4 * scale HR px wide) reaches 2 LR px in.
    hr = smooth_image(60, 60)
    lr_np = degrade(hr, scale, "bicubic")
    lr_tf = degrade_tf(tf.constant(hr), scale, "bicubic").numpy()
    inner = np.abs(lr_np - lr_tf)[2:-2, 2:-2]
    assert inner.max() < 1e-5
    assert np.abs(lr_np - lr_tf).max() > inner.max()  # the outermost pixels differ


@pytest.mark.parametrize("name", ["gaussian", "nearest"])
def test_tf_and_numpy_degradations_agree(name):
    hr = smooth_image(48, 48)
    assert np.allclose(degrade(hr, 3, name), degrade_tf(tf.constant(hr), 3, name).numpy(), atol=1e-5)


def test_nearest_picks_pil_centres():
    hr = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    # PIL's rule: source index floor((i + 0.5) * 2) = 1, 3
    assert degrade(hr, 2, "nearest")[..., 0].tolist() == [[5, 7], [13, 15]]


def test_upsample_shape():
    assert upsample_bicubic(smooth_image(10, 12), 3).shape == (30, 36, 3)


@pytest.mark.shared
@pytest.mark.parametrize("dataset,scale,ref_psnr,ref_ssim", [
    ("Set5", 2, 33.68, 0.9305), ("Set5", 3, 30.40, 0.8690), ("Set5", 4, 28.43, 0.8113),
    ("Set14", 2, 30.33, 0.8700), ("Set14", 3, 27.63, 0.7760), ("Set14", 4, 26.09, 0.7050),
])
def test_bicubic_reference_numbers(shared_data, dataset, scale, ref_psnr, ref_ssim):
    result = evaluate_model(bicubic_upscaler(scale), shared_data / dataset, scale)
    assert result["psnr"] == pytest.approx(ref_psnr, abs=0.02)
    assert result["ssim"] == pytest.approx(ref_ssim, abs=0.002)
