"""esrgan.ablation: a tiny five-column run (1 block x 8 filters, 2 + 2 steps, 32-px crops, one
generated image, random VGG conv2_2 features), what each column is made of, the histogram distance, and
the one-line error when the ImageNet VGG19 weights are unavailable."""
import json
import math

import keras
import numpy as np
import pytest

from common.images import write_image
from esrgan import ablation


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """One textured 200x104 image: 32-px training crops, and two 96x96 NIQE blocks after the border crop."""
    root = tmp_path_factory.mktemp("ablation_data")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:104, 0:200] / 50.0
    image = 0.5 + 0.25 * np.sin(3.0 * np.stack([xx, yy, xx + yy], -1)) + rng.normal(0, 0.08, (104, 200, 3))
    write_image(root / "one.png", np.clip(image, 0, 1).astype(np.float32))
    return root


TINY = ["--num-filters", "8", "--num-blocks", "1", "--disc-filters", "8", "--hr-patch", "32", "--batch-size", "2",
        "--pretrain-steps", "2", "--steps", "2", "--log-every", "1",
        "--perceptual-layer", "conv2_2"]  # the papers' conv5_4 doubles the time of an eager GAN step


@pytest.fixture(scope="module")
def run(image_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation_out")
    code = ablation.main([*TINY, "--train-data", str(image_dir), "--data", str(image_dir), "--out", str(out),
                          "--vgg-weights", "random"])
    assert code == 0
    return out, json.loads((out / "ablation.json").read_text())


def test_tiny_run_writes_all_files_with_five_finite_rows(run):
    out, result = run
    for name in ("ablation.json", "ablation.md", "crops.png", "histograms.png"):
        assert (out / name).stat().st_size > 0, name
    # atomic writes leave no temporary files; the columns' training keeps no checkpoints or logs
    assert sorted(p.name for p in out.iterdir()) == ["ablation.json", "ablation.md", "crops.png", "histograms.png"]
    rows = result["columns"]
    assert [r["number"] for r in rows] == [1, 2, 3, 4, 5]
    for row in rows:
        assert all(math.isfinite(row[k]) for k in ("psnr", "ssim", "niqe")), row["key"]
        assert all(math.isfinite(v) for v in row["last_gan"].values())
    assert all(math.isfinite(result["reference"]["bicubic"][k]) for k in ("psnr", "ssim", "niqe"))
    assert result["faithful"] is False and result["vgg_weights"].startswith("random")

    table = (out / "ablation.md").read_text()
    assert sum(line.startswith(f"| {n} |") for line in table.splitlines() for n in range(1, 6)) == 5
    assert "Random VGG19 features (not faithful)" in table


def test_columns_are_what_they_claim(run):
    rows = run[1]["columns"]
    assert [r["bn_layers"] > 0 for r in rows] == [True, False, False, False, False]
    assert [r["rrdb_blocks"] > 0 for r in rows] == [False, False, False, False, True]
    assert [r["residual_blocks"] > 0 for r in rows] == [True, True, True, True, False]
    assert [r["feature_layer"] for r in rows] == ["block2_conv2_relu"] * 2 + ["block2_conv2"] * 3
    assert [r["gan_loss"] for r in rows] == ["StandardGeneratorLoss"] * 3 + ["RelativisticGeneratorLoss"] * 2
    assert [r["discriminator_loss"] for r in rows] == ["DiscriminatorLoss"] * 3 + ["RelativisticDiscriminatorLoss"] * 2
    # columns 2-4 share one pre-trained generator; 2 and 3 differ only in the perceptual features
    assert rows[1]["last_pretrain"] == rows[2]["last_pretrain"] == rows[3]["last_pretrain"]
    assert rows[1]["last_gan"]["percep"] != rows[2]["last_gan"]["percep"]


def test_histograms_distance_is_zero_for_hr_against_itself(run):
    study = run[1]["histograms"]
    assert study["hr_vs_hr"] == 0.0
    assert 0.0 < study["bn_vs_hr"] <= 2.0 and 0.0 < study["no_bn_vs_hr"] <= 2.0
    for curve in study["curves"].values():
        assert len(curve) == 256 and sum(curve) == pytest.approx(1.0)

    rng = np.random.default_rng(1)
    image = rng.uniform(0.2, 0.6, (40, 40, 3)).astype(np.float32)
    h = ablation.brightness_histogram(np.bincount(ablation.grey_levels(image), minlength=256), 2.0)
    brighter = ablation.brightness_histogram(np.bincount(ablation.grey_levels(image + 0.3), minlength=256), 2.0)
    assert ablation.histogram_distance(h, h) == 0.0
    assert 1.0 < ablation.histogram_distance(h, brighter) <= 2.0


def test_columns_select_by_number_or_name():
    assert [c.number for c in ablation.select_columns(["rrdb", "1"])] == [1, 5]
    with pytest.raises(ValueError, match="unknown column"):
        ablation.select_columns(["6"])


def test_imagenet_weights_unavailable_is_a_one_line_error(image_dir, tmp_path, capsys, monkeypatch):
    def offline(fname, origin, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    out = tmp_path / "out"
    code = ablation.main([*TINY, "--train-data", str(image_dir), "--data", str(image_dir), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ImageNet VGG19 weights are not available offline") and err.count("\n") == 1
    assert not out.exists()  # stopped before training or writing anything


def test_a_column_trains_the_same_from_the_same_seed(image_dir, tmp_path, monkeypatch):
    """Pre-training and GAN stage through common.training.Trainer (in memory): twice the same weights."""
    monkeypatch.chdir(tmp_path)
    config = ablation.AblationConfig(num_filters=8, num_blocks=1, disc_filters=8, hr_patch=32, batch_size=2,
                                     pretrain_steps=2, steps=1, perceptual_layer="conv2_2")
    column = ablation.select_columns(["ragan"])[0]
    runs = []
    for _ in range(2):
        generator, last = ablation.pretrain(column, config, [image_dir])
        trained, info = ablation.train_column(column, config, [image_dir], generator.get_weights(), None)
        runs.append((generator.get_weights(), trained.get_weights(), last, info["last_gan"]))
    (pre_a, gan_a, last_a, info_a), (pre_b, gan_b, last_b, info_b) = runs
    assert set(last_a) == {"l1"} and math.isfinite(last_a["l1"]) and set(info_a) >= {"d_loss", "g_loss", "percep"}
    for a, b in zip(pre_a + gan_a, pre_b + gan_b, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(pre_a, gan_a))  # the GAN step did change it
    assert list(tmp_path.iterdir()) == []  # nothing written: no checkpoints


def test_disc_features_study_needs_no_vgg_and_moves_before_the_activation(image_dir, tmp_path, monkeypatch):
    """--perceptual disc-features: feature matching on the discriminator; 'before activation' columns
    take the layers feeding its activations (conv0_0 before lrelu0_0, bn1_1 before lrelu1_1)."""
    def offline(fname, origin, **kwargs):
        raise AssertionError(f"the disc-features study tried to load VGG19 from {origin}")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    out = tmp_path / "out"
    code = ablation.main([*TINY, "--train-data", str(image_dir), "--data", str(image_dir), "--out", str(out),
                          "--perceptual", "disc-features", "--disc-layers", "lrelu0_0", "lrelu1_1",
                          "--lowpass-weight", "1", "--columns", "2", "3"])
    assert code == 0
    result = json.loads((out / "ablation.json").read_text())
    rows = result["columns"]
    assert [sorted(r["feature_layer"].split(", ")) for r in rows] == [["lrelu0_0", "lrelu1_1"], ["bn1_1", "conv0_0"]]
    assert all(math.isfinite(r["last_gan"]["percep"]) and r["last_gan"]["percep"] > 0 for r in rows)
    assert result["faithful"] is True and result["vgg_weights"] == "not used"
    assert [r["settings"] for r in rows] == ["SRResNet, no BN; D features after activation; standard GAN",
                                            "SRResNet, no BN; D features before activation; standard GAN"]
    table = (out / "ablation.md").read_text()
    assert "feature matching on the discriminator" in table and "1 low-pass L1" in table
    assert "Random VGG19" not in table and "VGG19 weights:" not in table


def test_unknown_perceptual_network_is_refused():
    with pytest.raises(ValueError, match="--perceptual: must be one of"):
        ablation.AblationConfig(perceptual="vgg-random")
