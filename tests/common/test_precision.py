"""bfloat16 inference: detection, the auto choice, model casting and float32/bfloat16 agreement."""
import json

import keras
import numpy as np
import pytest

from common import backends, checkpoints, inference, precision, upscale_cli
from common.upscaler import Upscaler
from common import evaluate as ev
from common.images import read_image, to_uint8, write_image
from common.layers import Rescale
from common.precision import cast_model, float32_layers, native_bfloat16, resolve_precision
from esrgan.models import rrdb_generator
from srcnn.models import srcnn
from srgan.models import srresnet
from tests.common.test_checkpoints import POST_META, tiny_post

RNG = np.random.default_rng(3)
IMAGE = RNG.random((16, 16, 3)).astype(np.float32)
# Stated tolerance: on the 8-bit output image, bfloat16 and float32 differ by at most 2 levels,
# and by 0.25 of a level on average (bfloat16 keeps 8 significant bits; the first and last layers
# run in float32, so the image itself is never rounded to bfloat16).
MAX_LEVELS, MEAN_LEVELS = 2, 0.25

TINY = {
    "srcnn": (lambda: srcnn(n1=8, n2=4, padding="reflect"),
              {"scale": 2, "upsampling": "pre", "color": "y"}),
    "srresnet": (lambda: srresnet(scale=2, num_filters=8, num_blocks=1, output_activation="tanh"),
                 {"scale": 2, "upsampling": "post", "color": "rgb", "output_range": [-1, 1]}),
    "rrdb": (lambda: rrdb_generator(scale=2, num_filters=8, num_blocks=1, growth=4),
             {"scale": 2, "upsampling": "post", "color": "rgb"}),
}


def fake_machine(monkeypatch, tmp_path, flags="fpu sse2 avx avx2 fma", gpus=()):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\n")
    monkeypatch.setattr(precision, "CPUINFO", cpuinfo)
    monkeypatch.setattr(precision, "gpu_capabilities", lambda: list(gpus))


# --- detection and the auto choice ---------------------------------------------------------------


def test_auto_falls_back_to_float32_without_bfloat16(monkeypatch, tmp_path):
    fake_machine(monkeypatch, tmp_path)
    assert not native_bfloat16()
    used, reason = resolve_precision("auto")
    assert used == "float32"
    assert reason.startswith("precision: float32 (auto") and "\n" not in reason
    assert Upscaler(TINY["srcnn"][0](), TINY["srcnn"][1], backend="tensorflow", precision="auto").precision == "float32"


@pytest.mark.parametrize("flags", ["avx2 avx512f avx512_bf16", "avx2 amx_bf16 amx_tile"])
def test_auto_picks_bfloat16_on_native_cpus(monkeypatch, tmp_path, flags):
    fake_machine(monkeypatch, tmp_path, flags)
    assert native_bfloat16()
    used, reason = resolve_precision("auto")
    assert used == "bfloat16" and "_bf16" in reason


@pytest.mark.parametrize("capability, expected", [((8, 6), "bfloat16"), ((7, 5), "float32")])
def test_auto_on_gpus(monkeypatch, tmp_path, capability, expected):
    fake_machine(monkeypatch, tmp_path, gpus=[capability])
    assert resolve_precision("auto")[0] == expected


def test_explicit_choices(monkeypatch, tmp_path):
    fake_machine(monkeypatch, tmp_path)
    assert resolve_precision("float32") == ("float32", "precision: float32")
    used, reason = resolve_precision("bfloat16")  # honoured even where it is emulated
    assert used == "bfloat16" and "emulated" in reason
    upscaler = Upscaler(TINY["srcnn"][0](), TINY["srcnn"][1], backend="tensorflow", precision="bfloat16")
    assert upscaler.precision == "bfloat16" and upscaler.precision_note.startswith("precision: bfloat16")
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("float16")
    with pytest.raises(ValueError):
        Upscaler(TINY["srcnn"][0](), TINY["srcnn"][1], backend="tensorflow", precision="float16")


def test_unreadable_cpuinfo_means_no_flags(monkeypatch, tmp_path):
    monkeypatch.setattr(precision, "CPUINFO", tmp_path / "missing")
    assert precision.cpu_flags() == set()


# --- casting a model -------------------------------------------------------------------------------


def test_cast_model_policies_and_weights():
    model = TINY["srresnet"][0]()
    cast = cast_model(model)
    kept = set(float32_layers(model))
    assert kept == {"head_conv", "block1_bn1", "block1_bn2", "body_bn", "tail_conv"}
    for layer in cast.layers[1:]:
        assert layer.dtype_policy.name == ("float32" if layer.name in kept else "mixed_bfloat16"), layer.name
    assert all(layer.dtype_policy.name == "float32" for layer in model.layers)  # original untouched
    assert all(w.dtype == "float32" for w in cast.weights)
    for a, b in zip(model.get_weights(), cast.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert cast.outputs[0].dtype == "float32"
    assert cast_model(model, "float32") is model


def test_first_and_last_layers_through_weightless_ones():
    assert float32_layers(srcnn(n1=8, n2=4, padding="reflect")) == ["reflect", "conv1", "conv3"]
    inp = keras.Input((None, None, 3))
    x = Rescale(2.0, -1.0, name="to_pm1")(inp)
    x = keras.layers.Conv2D(4, 3, padding="same", name="first")(x)
    x = keras.layers.Conv2D(3, 3, padding="same", name="last")(x)
    x = Rescale(0.5, 0.5, name="to_01")(x)
    assert float32_layers(keras.Model(inp, x)) == ["to_pm1", "first", "last", "to_01"]


def test_output_cast_to_float32_when_last_layer_is_bfloat16():
    model = tiny_post()
    cast = cast_model(model, "bfloat16", keep_float32=[])
    assert cast.outputs[0].dtype == "float32"
    assert cast(IMAGE[None]).dtype == "float32"
    assert all(layer.dtype_policy.name == "mixed_bfloat16" for layer in cast.layers[1:-1])
    with pytest.raises(ValueError, match="no layers named nope"):
        cast_model(model, "bfloat16", keep_float32=["nope"])
    with pytest.raises(ValueError, match="cannot cast"):
        cast_model(model, "float16")


@pytest.mark.parametrize("name", sorted(TINY))
def test_precisions_agree_within_tolerance(name):
    build, meta = TINY[name]
    model = build()
    f32 = upscale(IMAGE, model, meta, precision="float32")
    bf16 = upscale(IMAGE, model, meta, precision="bfloat16")
    assert f32.dtype == bf16.dtype == np.float32 and f32.shape == bf16.shape == (32, 32, 3)
    assert 0.0 <= bf16.min() and bf16.max() <= 1.0
    levels = np.abs(to_uint8(f32).astype(int) - to_uint8(bf16))
    assert levels.max() <= MAX_LEVELS and levels.mean() <= MEAN_LEVELS, (levels.max(), levels.mean())
    assert np.abs(f32 - bf16).max() > 0  # really computed in another precision


def upscale(image, model, meta, precision):
    return inference.upscale(image, model, meta, tile=0, precision=precision)


def test_upscaler_precision_equals_one_call_upscale():
    model, meta = TINY["srcnn"][0](), TINY["srcnn"][1]  # conv2 runs in bfloat16
    bf16 = Upscaler(model, meta, backend="tensorflow", precision="bfloat16", tile=0)(IMAGE)
    f32 = Upscaler(model, meta, backend="tensorflow", tile=0)(IMAGE)
    np.testing.assert_array_equal(bf16, upscale(IMAGE, model, meta, "bfloat16"))
    np.testing.assert_array_equal(f32, upscale(IMAGE, model, meta, "float32"))
    assert np.abs(f32 - bf16).max() > 0


def test_bfloat16_backends(monkeypatch):
    """auto keeps bfloat16 on TensorFlow; OpenVINO runs it when named, on CPUs that have it natively;
    ONNX Runtime never. Refusals are one line."""
    model, meta = TINY["srcnn"][0](), TINY["srcnn"][1]
    assert Upscaler(model, meta, backend="auto", precision="bfloat16").backend == "tensorflow"
    if backends.installed("onnxruntime"):
        with pytest.raises(backends.BackendError, match="backend onnxruntime runs float32 only"):
            Upscaler(model, meta, backend="onnxruntime", precision="bfloat16")
    if not backends.installed("openvino"):
        return
    monkeypatch.setattr(backends, "native_bfloat16_cpu", lambda: False)
    with pytest.raises(backends.BackendError, match="openvino runs bfloat16 only on CPUs with AVX512-BF16"):
        Upscaler(model, meta, backend="openvino", precision="bfloat16")
    monkeypatch.undo()
    if backends.native_bfloat16_cpu():
        f32 = Upscaler(model, meta, backend="openvino")(IMAGE)
        up = Upscaler(model, meta, backend="openvino", precision="bfloat16")
        assert (up.backend, up.precision) == ("openvino", "bfloat16")
        bf16 = up(IMAGE)
        levels = np.abs(to_uint8(f32).astype(int) - to_uint8(bf16))
        assert levels.max() <= MAX_LEVELS and np.abs(f32 - bf16).max() > 0


# --- command lines ----------------------------------------------------------------------------------


@pytest.fixture
def checkpoint(tmp_path):
    return checkpoints.save_model(tiny_post(), tmp_path / "post_x2.h5", POST_META)


def test_upscale_cli_says_which_precision(monkeypatch, tmp_path, checkpoint, capsys):
    fake_machine(monkeypatch, tmp_path)
    src = tmp_path / "a.png"
    write_image(src, to_uint8(IMAGE))
    outputs = {}
    for choice in ("float32", "auto", "bfloat16"):
        out = tmp_path / f"{choice}.png"
        code = upscale_cli.main([str(src), "-o", str(out), "--weights", str(checkpoint), "--precision", choice])
        err = capsys.readouterr().err
        assert code == 0
        outputs[choice] = to_uint8(read_image(out)).astype(int)
        lines = [line for line in err.splitlines() if line.startswith("precision:")]
        if choice == "float32":
            assert lines == []
        else:
            assert len(lines) == 1
            assert lines[0].startswith("precision: " + ("float32 (auto" if choice == "auto" else "bfloat16"))
    np.testing.assert_array_equal(outputs["auto"], outputs["float32"])
    assert np.abs(outputs["bfloat16"] - outputs["float32"]).max() <= MAX_LEVELS


def test_evaluate_cli_precision(tmp_path, checkpoint, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        write_image(data / f"img{i}.png", to_uint8(RNG.random((24, 24, 3))))
    results = {}
    for choice in ("float32", "bfloat16"):
        out = tmp_path / f"{choice}.json"
        code = ev.main(["--model", str(checkpoint), "--data", str(data), "--scale", "2", "--json", str(out),
                        "--precision", choice])
        assert code == 0
        results[choice] = json.loads(out.read_text())["psnr"]
    assert "precision: bfloat16" in capsys.readouterr().err
    assert abs(results["float32"] - results["bfloat16"]) <= 0.05
    with pytest.raises(SystemExit):  # argparse rejects unknown precisions
        ev.main(["--model", "bicubic", "--data", str(data), "--scale", "2", "--precision", "half"])


def test_chapter_evaluators_take_precision():
    from srcnn.evaluate import main as srcnn_main
    from srgan.evaluate import generator_upscaler

    build, meta = TINY["srresnet"]
    model = build()
    lr = IMAGE
    f32 = generator_upscaler(model, {**meta, "input_range": [0, 1]})(lr)
    bf16 = generator_upscaler(model, {**meta, "input_range": [0, 1]}, "bfloat16")(lr)
    levels = np.abs(to_uint8(f32).astype(int) - to_uint8(bf16))
    assert levels.max() <= MAX_LEVELS and np.abs(f32 - bf16).max() > 0
    with pytest.raises(SystemExit):  # argparse rejects unknown precisions
        srcnn_main(["--data", "x", "--precision", "half"])


def test_bfloat16_follows_weight_changes():
    """The bfloat16 copy is refreshed from the model at every call (e.g. validation during training)."""
    model, meta = TINY["srcnn"][0](), TINY["srcnn"][1]
    before = upscale(IMAGE, model, meta, "bfloat16")
    model.set_weights([w * 0.5 for w in model.get_weights()])
    after = upscale(IMAGE, model, meta, "bfloat16")
    reference = upscale(IMAGE, model, meta, "float32")
    assert np.abs(after - before).max() > 0.01
    assert np.abs(to_uint8(after).astype(int) - to_uint8(reference)).max() <= MAX_LEVELS
