import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import common  # noqa: F401

from common.images import read_image
from common.niqe import default_params_path, niqe

MATLAB_BABOON = 5.7296  # MATLAB R2021a niqe, Y channel, 480x492 crop, no border crop


@pytest.fixture(scope="module")
def baboon(shared_data):
    return read_image(shared_data / "Set14" / "baboon.png")[:, :492]


def test_matches_matlab_on_baboon(baboon):
    assert baboon.shape == (480, 492, 3)
    assert abs(niqe(baboon) - MATLAB_BABOON) < 0.01


def test_input_forms_agree(baboon, shared_data):
    as_uint8 = np.round(baboon * 255).astype(np.uint8)
    value = niqe(baboon)
    assert niqe(as_uint8) == value
    y = (baboon.astype(np.float64) @ [65.481, 128.553, 24.966] + 16) / 255  # Y given directly
    assert niqe(y) == pytest.approx(value, abs=1e-12)
    path = shared_data / "Set14" / "baboon.png"
    assert niqe(path) == niqe(read_image(path)) == value  # 480x500 -> the same 480x480 blocks
    assert niqe(baboon[:, 8:]) != pytest.approx(value, abs=1e-3)


def test_blur_raises_niqe_and_crop_border_matters(baboon):
    blurred = np.stack([gaussian_filter(baboon[..., c], 2.0) for c in range(3)], axis=-1)
    assert niqe(blurred) > niqe(baboon) + 1.0
    assert niqe(baboon, crop_border=4) != pytest.approx(niqe(baboon), abs=1e-3)


def test_params_file_errors(tmp_path):
    assert default_params_path().name == "niqe_pris_params.npz"
    img = np.random.default_rng(0).uniform(size=(96, 192))
    with pytest.raises(FileNotFoundError, match="pristine"):
        niqe(img, params_path=tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="two 96x96 blocks"):
        niqe(img[:, :150])
