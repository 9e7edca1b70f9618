"""int8 inference: NNCF quantization on training patches, its cache entry, the refusals, the recipe."""
import json

import numpy as np
import pytest

from common import backends, checkpoints, precision, quantize
from common.images import write_image
from common.upscaler import Upscaler
from tests.common.test_checkpoints import POST_META, PRE_META, tiny_post

pytest.importorskip("openvino")
pytest.importorskip("nncf")

def tiny3(filters: int = 8, scale: int = 2):
    """tiny_post with a middle convolution: the first and last stay float32, the middle one is int8."""
    import keras

    from common.layers import PixelShuffle

    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(3 * scale * scale, 3, padding="same")(x)
    return keras.Model(inp, PixelShuffle(scale)(x))


RNG = np.random.default_rng(5)
IMAGE = RNG.random((20, 18, 3)).astype(np.float32)


def smooth_image(seed: int, size: int = 64) -> np.ndarray:
    """A photo-like image (smooth gradients and an edge) so calibration ranges are image-like."""
    y, x = np.mgrid[0:size, 0:size] / size
    rng = np.random.default_rng(seed)
    channels = [np.sin(6 * x * rng.random() + 4 * y * rng.random() + c) * 0.4 + 0.5 for c in range(3)]
    image = np.stack(channels, axis=-1)
    image[size // 2 :, : size // 3] *= 0.5
    return image.astype(np.float32)


@pytest.fixture
def fast_calibration(tmp_path, monkeypatch):
    """A handful of small calibration patches from a tiny training folder; the cache in tmp_path."""
    folder = tmp_path / "train"
    folder.mkdir()
    for i in range(3):
        write_image(folder / f"t{i}.png", smooth_image(i))
    monkeypatch.setattr(quantize, "CALIBRATION_FOLDERS", (str(folder),))
    monkeypatch.setattr(quantize, "CALIBRATION_PATCHES", 6)
    monkeypatch.setattr(quantize, "CALIBRATION_LR_PATCH", 12)
    monkeypatch.setenv("SR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _entries(cache):
    return sorted(p.name for p in cache.iterdir())


def test_int8_quantizes_once_then_reuses_the_cached_entry(fast_calibration, tmp_path, monkeypatch):
    path = checkpoints.save_model(tiny3(), tmp_path / "m.h5", POST_META)
    first = Upscaler(str(path), backend="auto", precision="int8", tile=0)
    assert first.backend == "openvino" and first.precision == "int8"
    line = first.description
    assert "\n" not in line and "quantized to int8 with NNCF" in line and " s on 6 12x12 LR patches of train" in line
    assert "(bicubic degradation)" in line and "cached in" in line
    names = _entries(fast_calibration)
    v = backends.CACHE_VERSION
    assert len(names) == 2 and sum(n.endswith(f"-int8-v{v}") for n in names) == 1
    assert sum(n.endswith(f"-float32-v{v}") for n in names) == 1  # beside the float32 conversion
    assert len({n.split("-openvino-")[0] for n in names}) == 1  # under the same content key
    (int8_entry,) = [fast_calibration / n for n in names if "-int8-" in n]
    info = json.loads((int8_entry / "info.json").read_text())
    assert set(info["files"]) == {"model.xml", "model.bin"}
    assert info["quantization"]["recipe"] == quantize.RECIPE and "train" in info["quantization"]["calibration"]
    assert "FakeQuantize" in (int8_entry / "model.xml").read_text()

    # later calls reuse it: quantizing again would fail here
    def no_quantizing(*args, **kwargs):
        raise AssertionError("quantized again")

    monkeypatch.setattr(quantize, "quantize_for_openvino", no_quantizing)
    second = Upscaler(str(path), precision="int8", tile=0)
    assert f"cached int8 model {int8_entry}" in second.description
    np.testing.assert_array_equal(first(IMAGE), second(IMAGE))

    # on an image like the calibration patches, int8 is close to float32 but not the same arithmetic
    photo = smooth_image(9, 24)
    diff = np.abs(second(photo) - Upscaler(str(path), backend="openvino", tile=0)(photo))
    assert 0 < diff.max() <= 0.1 and diff.mean() <= 0.01


def test_broken_int8_entry_is_rebuilt_and_the_float32_entry_reused(fast_calibration, tmp_path, monkeypatch):
    path = checkpoints.save_model(tiny_post(), tmp_path / "m.h5", POST_META)
    Upscaler(str(path), precision="int8")
    (entry,) = [p for p in fast_calibration.iterdir() if "-int8-" in p.name]
    weights = entry / "model.bin"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x10  # same size: only the hash tells
    weights.write_bytes(bytes(data))

    def no_conversion(model):
        raise AssertionError("converted again: the float32 entry should have been read")

    monkeypatch.setattr(backends, "openvino_model", no_conversion)
    again = Upscaler(str(path), precision="int8")
    line = again.description
    assert f"cached entry {entry} was broken (model.bin does not match its recorded hash)" in line
    assert "quantized to int8" in line and "\n" not in line
    assert f"cached int8 model {entry}" in Upscaler(str(path), precision="int8").description


def test_int8_of_a_model_in_memory_is_not_cached(fast_calibration):
    upscaler = Upscaler(tiny_post(), dict(POST_META), precision="int8", tile=0)
    assert upscaler.precision == "int8" and ", not cached" in upscaler.description
    assert upscaler(IMAGE).shape == (40, 36, 3)
    assert not fast_calibration.exists() or _entries(fast_calibration) == []


@pytest.mark.parametrize("backend", ["tensorflow", "onnxruntime"])
def test_int8_is_refused_where_it_cannot_run(backend, tmp_path, capsys):
    from common import evaluate as ev
    from common import upscale_cli

    with pytest.raises(backends.BackendError) as caught:
        backends.choose_backend(backend, "int8")
    assert str(caught.value).startswith("--precision int8: ") and caught.value.option == "--precision int8"

    path = checkpoints.save_model(tiny_post(), tmp_path / "m.h5", POST_META)
    write_image(tmp_path / "a.png", IMAGE)
    code = upscale_cli.main([str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"), "--weights", str(path),
                             "--backend", backend, "--precision", "int8"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: --precision int8: ") and "OpenVINO" in err[0]
    assert not (tmp_path / "b.png").exists()

    folder = tmp_path / "set"
    folder.mkdir()
    write_image(folder / "x.png", smooth_image(0, 32))
    code = ev.main(["--model", str(path), "--data", str(folder), "--scale", "2", "--backend", backend,
                    "--precision", "int8"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: --precision int8: ")


def test_calibration_is_training_patches_fed_as_inference_feeds_them(fast_calibration):
    assert set(quantize.CALIBRATION_FOLDERS) == {str(fast_calibration.parent / "train")}  # the fixture's
    from common.model_analysis import ModelInfo, spec_from_info

    pre_info = ModelInfo(in_channels=1, out_channels=1, ratio=1.0, crop=0, receptive_field=6, bytes_per_pixel=4)
    inputs, described = quantize.calibration_inputs(spec_from_info(pre_info, PRE_META), PRE_META, count=3)
    # a pre-upsampling Y model: bicubic-upscaled luma, 12 LR px -> 24 px, one channel
    assert [x.shape for x in inputs] == [(1, 24, 24, 1)] * 3 and "3 12x12 LR patches of train" in described
    assert all(0 <= x.min() and x.max() <= 1.05 for x in inputs) and len({x.tobytes() for x in inputs}) == 3
    post = spec_from_info(backends.analyze_model(tiny_post()), POST_META)
    bicubic, _ = quantize.calibration_inputs(post, POST_META, count=2)
    nearest, described = quantize.calibration_inputs(post, {**POST_META, "degradation": "nearest"}, count=2)
    assert bicubic[0].shape == (1, 12, 12, 3) and "(nearest degradation)" in described
    assert not np.array_equal(bicubic[0], nearest[0])  # the model's own degradation makes the LR


def test_default_calibration_is_the_training_folders_never_a_test_set():
    assert set(quantize.CALIBRATION_FOLDERS) == {"T91", "BSD200"}
    assert not any(name.lower().startswith("set") for name in quantize.CALIBRATION_FOLDERS)


def test_recipe_keeps_the_residual_additions_in_float32(fast_calibration, tmp_path):
    from esrgan.models import rrdb_generator

    model = rrdb_generator(scale=2, num_filters=8, num_blocks=1, growth=4)
    converted = backends.openvino_model(model)
    from common.model_analysis import spec_from_info

    spec = spec_from_info(backends.analyze_model(model), {"scale": 2})
    quantized, record, _ = quantize.quantize_for_openvino(converted, spec, {})
    feeds = [[t.get_node().get_type_name() for t in op.output(0).get_target_inputs()]
             for op in quantized.get_ordered_ops() if op.get_type_name() == "FakeQuantize"]
    assert any("Convolution" in f or "Concat" in f for f in feeds)  # convolutions are quantized
    assert not any("Add" in f for f in feeds)  # the residual stream is not
    assert record["ignored_types"] == ["Add"]
    # nor the convolutions that read and write the image
    kept = quantize.image_convolutions(converted)
    assert len(kept) == 2 and record["float32_convolutions"] == kept
    by_name = {op.get_friendly_name(): op for op in quantized.get_ordered_ops()}
    convs = [op for op in quantized.get_ordered_ops() if op.get_type_name() == "Convolution"]

    def quantized_weights(op):  # int8 constants or a FakeQuantize on the way to the kernel input
        node = op.input_value(1).get_node()
        for _ in range(5):
            if node.get_type_name() == "FakeQuantize" or (
                    node.get_type_name() == "Constant" and "8" in str(node.get_output_element_type(0))):
                return True
            if not node.get_input_size():
                return False
            node = node.input_value(0).get_node()
        return False

    assert not any(quantized_weights(by_name[name]) for name in kept)
    assert sum(quantized_weights(op) for op in convs) == len(convs) - 2


def test_precision_line_and_auto(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw avx512_vnni\n\n")
    monkeypatch.setattr(precision, "CPUINFO", cpuinfo)
    monkeypatch.setattr(precision, "gpu_capabilities", lambda: [])
    used, line = precision.resolve_precision("int8")
    assert used == "int8" and "VNNI: the CPU has avx512_vnni" in line
    assert precision.resolve_precision("auto")[0] == "float32"  # auto never picks int8
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2\n\n")
    assert "no VNNI" in precision.resolve_precision("int8")[1]
    assert "int8" in precision.PRECISIONS and "never int8" in precision.PRECISION_HELP


def test_int8_cautions_for_architectures_whose_accuracy_is_unmeasured():
    from common.backends import _int8_caution

    assert _int8_caution({"architecture": "rrdb_generator"}, "line") == "line"
    for meta in ({"architecture": "srresnet"}, {}, None):
        cautioned = _int8_caution(meta, "line")
        assert cautioned.startswith("line; caution:") and "float32" in cautioned and "\n" not in cautioned
