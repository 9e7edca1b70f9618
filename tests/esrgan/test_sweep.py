"""esrgan.sweep and esrgan.evaluate on two tiny RRDB checkpoints and two generated images."""
import json

import keras
import numpy as np
import pytest

from common.checkpoints import save_model
from common.images import write_image
from esrgan import evaluate as esrgan_evaluate
from esrgan import sweep as esrgan_sweep
from esrgan.models import rrdb_generator

TINY = dict(scale=4, num_filters=8, num_blocks=1, growth=4, res_scale=0.2)
META = {"architecture": "rrdb_generator", "args": TINY, "scale": 4, "upsampling": "post", "color": "rgb",
        "input_range": [0, 1], "output_range": [0, 1], "degradation": "bicubic"}


def checkpoint(path, seed, **args):
    """A random tiny generator whose output sits around grey 0.5 (so that NIQE is defined)."""
    keras.utils.set_random_seed(seed)
    model = rrdb_generator(**{**TINY, **args})
    kernel, bias = model.get_layer("conv_last").get_weights()
    model.get_layer("conv_last").set_weights([kernel * 4.0, bias + 0.5])
    return str(save_model(model, path, {**META, "args": {**TINY, **args}}))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    rng = np.random.default_rng(0)
    (root / "data").mkdir()
    yy, xx = np.mgrid[0:104, 0:200] / 50.0
    for name, f in (("one", 3.0), ("two", 5.0)):  # two 96x96 NIQE blocks each after the border crop
        image = 0.5 + 0.25 * np.sin(f * np.stack([xx, yy, xx + yy], -1)) + rng.normal(0, 0.08, (104, 200, 3))
        write_image(root / "data" / f"{name}.png", np.clip(image, 0, 1).astype(np.float32))
    return root, checkpoint(root / "psnr.h5", 1), checkpoint(root / "gan.h5", 2)


def test_sweep_ends_are_the_two_models_and_the_plot_is_written(setup, tmp_path, capsys):
    root, psnr_ckpt, gan_ckpt = setup
    out = tmp_path / "out"
    code = esrgan_sweep.main(["--psnr", psnr_ckpt, "--gan", gan_ckpt, "--data", str(root / "data"),
                              "--alphas", "0", "0.5", "1", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    result = json.loads((out / "sweep.json").read_text())
    assert result["alphas"] == [0.0, 0.5, 1.0] and result["architecture"] == "rrdb_generator"
    assert [r["alpha"] for r in result["network"]] == [r["alpha"] for r in result["pixel"]] == [0.0, 0.5, 1.0]

    # alpha 0 / 1 score exactly what esrgan.evaluate gives for each checkpoint alone on the sweep's engine
    # (TensorFlow: it re-blends the weights in place; another engine may round a pixel the other way)
    for end, ckpt in ((0, psnr_ckpt), (-1, gan_ckpt)):
        model, meta, _ = esrgan_evaluate.load_weights(ckpt)
        alone = esrgan_evaluate.evaluate(model, meta, root / "data", 4, with_niqe=True, backend="tensorflow")
        assert alone["niqe"] is not None
        for method in ("network", "pixel"):
            row = result[method][end]
            assert (row["psnr"], row["ssim"], row["niqe"]) == (alone["psnr"], alone["ssim"], alone["niqe"])
            assert [r["niqe"] for r in row["per_image"]] == [r["niqe"] for r in alone["per_image"]]
    # in between, blending weights is not blending images
    assert result["network"][1]["psnr"] != pytest.approx(result["pixel"][1]["psnr"], abs=1e-6)
    assert result["psnr_model"] == psnr_ckpt and result["dataset"] == "data"

    png = (out / "sweep.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "alpha" in capsys.readouterr().out


def test_evaluate_cli_adds_niqe_to_the_common_json(setup, tmp_path):
    root, psnr_ckpt, _ = setup
    out = tmp_path / "result.json"
    assert esrgan_evaluate.main(["--data", str(root / "data"), "--scale", "4", "--weights", psnr_ckpt,
                                 "--json", str(out), "--niqe"]) == 0
    result = json.loads(out.read_text())
    assert {"dataset", "scale", "model", "degradation", "psnr", "ssim", "per_image", "niqe"} <= set(result)
    assert [r["name"] for r in result["per_image"]] == ["one", "two"]
    assert result["niqe"] == pytest.approx(np.mean([r["niqe"] for r in result["per_image"]]))
    assert esrgan_evaluate.main(["--data", str(root / "data"), "--weights", psnr_ckpt, "--json", str(out)]) == 0
    assert "niqe" not in json.loads(out.read_text())


def test_missing_default_weights_and_mismatched_models_are_one_line_errors(setup, tmp_path, capsys, monkeypatch):
    root, psnr_ckpt, _ = setup
    monkeypatch.setattr(esrgan_evaluate, "DEFAULT_WEIGHTS", tmp_path / "weights" / "rrdb_x4.h5")
    assert esrgan_evaluate.main(["--data", str(root / "data")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rrdb_x4.h5 not found" in err and "--weights" in err

    wider = checkpoint(tmp_path / "wider.h5", 3, num_filters=16)
    assert esrgan_sweep.main(["--psnr", psnr_ckpt, "--gan", wider, "--data", str(root / "data"),
                              "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the models' args differ") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
