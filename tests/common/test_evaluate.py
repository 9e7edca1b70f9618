"""False colour in the evaluation protocol, its JSON and the evaluate commands' output."""
import json

import keras
import numpy as np
import pytest

from common import evaluate as common_evaluate
from common.checkpoints import save_model
from common.data import eval_pairs
from common.evaluate import bicubic_upscaler, evaluate_model, format_report
from common.images import to_uint8, write_image
from common.metrics import false_colour


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fc_eval") / "Tiny"
    folder.mkdir()
    yy, xx = np.mgrid[0:48, 0:56] / 48.0
    for name, f in (("one", 3.0), ("two", 5.0)):
        write_image(folder / f"{name}.png", (0.5 + 0.3 * np.sin(f * np.stack([xx, yy, xx + yy], -1))).astype(np.float32))
    return folder


def chroma_checkerboard_upscaler(scale):
    """Bicubic plus a blue/yellow pixel checkerboard: chroma detail no HR has."""
    def fn(lr):
        sr = bicubic_upscaler(scale)(lr)
        h, w = sr.shape[:2]
        board = np.where((np.arange(h)[:, None] + np.arange(w)) % 2, 0.06, -0.06)
        sr = sr.copy()
        sr[..., 2] += board
        sr[..., 0] -= board
        return np.clip(sr, 0, 1)
    return fn


def test_evaluate_model_adds_false_colour_per_image_and_its_mean(data_dir):
    fn = chroma_checkerboard_upscaler(4)
    result = evaluate_model(fn, data_dir, 4)
    assert list(result)[:6] == ["dataset", "scale", "model", "degradation", "psnr", "ssim"]  # old keys kept
    expected = {name: false_colour(to_uint8(fn(lr)), to_uint8(hr), 4) for name, hr, lr in eval_pairs(data_dir, 4)}
    assert {r["name"]: r["false_colour"] for r in result["per_image"]} == pytest.approx(expected)
    assert result["false_colour"] == pytest.approx(np.mean(list(expected.values())))
    bicubic = evaluate_model(bicubic_upscaler(4), data_dir, 4)
    assert result["false_colour"] > 5 > 0.5 > bicubic["false_colour"]


def test_common_evaluate_prints_and_writes_false_colour(data_dir, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert common_evaluate.main(["--model", "bicubic", "--data", str(data_dir), "--scale", "4", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    mean_line = [line for line in capsys.readouterr().out.splitlines() if line.startswith("mean")][0]
    assert f"false colour {result['false_colour']:.2f}" in mean_line
    assert all("false_colour" in r for r in result["per_image"])


def test_format_report_reads_results_written_before_false_colour():
    old = {"model": "m", "dataset": "D", "scale": 4, "degradation": "bicubic", "psnr": 30.0, "ssim": 0.9,
           "per_image": [{"name": "a", "psnr": 30.0, "ssim": 0.9}]}
    assert "false colour" not in format_report(old) and "30.000 dB" in format_report(old)


def test_esrgan_evaluate_shows_false_colour_beside_niqe(data_dir, tmp_path, capsys):
    from esrgan import evaluate as esrgan_evaluate
    from esrgan.models import rrdb_generator

    args = dict(scale=4, num_filters=8, num_blocks=1, growth=4, res_scale=0.2)
    keras.utils.set_random_seed(0)
    ckpt = save_model(rrdb_generator(**args), tmp_path / "tiny.h5",
                      {"architecture": "rrdb_generator", "args": args, "scale": 4, "upsampling": "post",
                       "color": "rgb", "input_range": [0, 1], "output_range": [0, 1]})
    out = tmp_path / "e.json"
    assert esrgan_evaluate.main(["--data", str(data_dir), "--weights", str(ckpt), "--backend", "tensorflow",
                                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["false_colour"] >= 0 and f"false colour {result['false_colour']:.2f}" in capsys.readouterr().out
