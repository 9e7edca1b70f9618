"""Real-ESRGAN's SRVGGNetCompact (esrgan.models.srvgg_compact): its layout, the input skip, reload by
JSON, its receptive field and tiling margin (tiles give the untiled image), and OpenVINO / ONNX
Runtime giving TensorFlow's pixels."""
import keras
import numpy as np
import pytest

import common  # noqa: F401

from common import backends, checkpoints, registry
from common.images import to_uint8
from common.model_analysis import analyze_model, model_spec
from common.upscaler import Upscaler
from esrgan.chapter import CHAPTER
from esrgan.models import srvgg_compact

ENGINES = [b for b in ("openvino", "onnxruntime") if backends.installed(b)]
RNG = np.random.default_rng(3)


def lr(h=9, w=7, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (1, h, w, 3)).astype(np.float32)


def compact_parameters(f, n, scale):
    """SRVGGNetCompact's parameter count, written out from its definition."""
    conv = lambda cin, cout: 9 * cin * cout + cout  # noqa: E731
    return conv(3, f) + n * conv(f, f) + conv(f, 3 * scale**2) + (n + 1) * f  # + one PReLU slope per channel


def strong(model, seed=0):
    """He-scaled random weights (PyTorch's default init leaves the conv path too weak for the
    input skip to be more than a nearest upscale), conv_last smaller so outputs stay near [0, 1]."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            std = np.sqrt(2 / (1 + 0.25**2) / np.prod(kernel.shape[:3])) * (0.3 if layer.name == "conv_last" else 1)
            layer.set_weights([rng.normal(0, std, kernel.shape).astype("float32"),
                               rng.normal(0, 0.01, bias.shape).astype("float32")])
    return model


def test_published_size_and_layout():
    model = srvgg_compact()  # realesr-animevideov3: 64 filters, 16 convs, x4
    assert model.count_params() == compact_parameters(64, 16, 4) == 621_424
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 18 and all(tuple(c.kernel_size) == (3, 3) for c in convs)
    prelus = [layer for layer in model.layers if isinstance(layer, keras.layers.PReLU)]
    assert len(prelus) == 17
    assert all(p.get_weights()[0].shape == (1, 1, 64) and np.all(p.get_weights()[0] == 0.25) for p in prelus)


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_shapes_and_parameters_at_every_scale(scale):
    model = srvgg_compact(scale=scale, num_filters=8, num_convs=2)
    assert tuple(model(lr(), training=False).shape) == (1, 9 * scale, 7 * scale, 3)
    assert model.count_params() == compact_parameters(8, 2, scale)


def test_the_input_skip_is_a_nearest_upscale():
    model = srvgg_compact(scale=4, num_filters=8, num_convs=2)
    x = lr()
    nearest = np.repeat(np.repeat(x, 4, axis=1), 4, axis=2)
    assert np.abs(model(x, training=False).numpy() - nearest).max() > 1e-3  # the conv path adds something
    last = model.get_layer("conv_last")
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    np.testing.assert_array_equal(model(x, training=False).numpy(), nearest)


def test_sub_pixel_order_is_depth_to_space():
    # conv_last's channel (i*r + j)*3 + c lands at offset (i, j) of colour c
    model = srvgg_compact(scale=2, num_filters=4, num_convs=0)
    last = model.get_layer("conv_last")
    kernel, bias = np.zeros_like(last.get_weights()[0]), np.zeros(12, np.float32)
    bias[(1 * 2 + 0) * 3 + 2] = 1.0  # i=1, j=0, blue
    last.set_weights([kernel, bias])
    out = model(np.zeros((1, 3, 3, 3), np.float32), training=False).numpy()
    assert np.all(out[0, 1::2, 0::2, 2] == 1) and out.sum() == 9


def test_checkpoint_reloads_whole_and_from_its_json(tmp_path):
    model = strong(srvgg_compact(num_filters=8, num_convs=3))
    meta = CHAPTER.checkpoint_meta("srvgg_compact", {"scale": 4, "num_filters": 8, "num_convs": 3}, 4)
    path = checkpoints.save_model(model, tmp_path / "compact.h5", meta)
    x, expected = lr(), model(lr(), training=False).numpy()
    for source in (path, tmp_path / "compact.weights.h5"):  # whole model (no Lambda), and rebuilt by name
        loaded, loaded_meta = checkpoints.load_model(source)
        assert loaded_meta["architecture"] == "srvgg_compact"
        np.testing.assert_array_equal(loaded(x, training=False).numpy(), expected)
    assert "srvgg_compact" in registry.names() and "srvgg_compact" in CHAPTER.generators


def test_receptive_field_and_margin_cover_the_conv_stack():
    for convs in (2, 16):
        info = analyze_model(srvgg_compact(num_filters=4, num_convs=convs))
        assert info.receptive_field == convs + 2  # 3x3 convs at LR; the skip adds nothing
    spec = model_spec(srvgg_compact(num_filters=4), {"scale": 4})
    assert spec.margin == 18  # all of it (deep RRDBs get DEFAULT_MARGIN, 16)


def test_tiles_give_the_untiled_image():
    model = strong(srvgg_compact(num_filters=8, num_convs=16))
    image = RNG.random((61, 53, 3)).astype(np.float32)
    whole = Upscaler(model, {"scale": 4}, backend="tensorflow", tile=0)
    expected = whole(image)
    assert expected.std() > 0.2 and 0.01 < expected.mean() < 0.99  # not saturated by the clip
    calls = []
    tiled = Upscaler(whole.prepared, {"scale": 4}, tile=48)(image, progress=lambda done, total: calls.append(total))
    assert calls[-1] >= 4  # 2 x 2 tiles at least
    assert np.abs(tiled - expected).max() <= 3e-6  # float rounding
    # the margin matters: 16 px (the cap for deep models) leaves a trace, 4 px visible seams
    capped = Upscaler(whole.prepared, {"scale": 4}, tile=48, tile_overlap=16)(image)
    assert np.abs(capped - expected).max() > 8e-6
    short = Upscaler(whole.prepared, {"scale": 4}, tile=48, tile_overlap=4)(image)
    assert np.abs(short - expected).max() > 1 / 255


@pytest.mark.parametrize("backend", ENGINES)
def test_backends_give_tensorflows_pixels(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("SR_CACHE_DIR", str(tmp_path / "cache"))
    model = strong(srvgg_compact(num_filters=8, num_convs=4), seed=1)
    meta = CHAPTER.checkpoint_meta("srvgg_compact", {"scale": 4, "num_filters": 8, "num_convs": 4}, 4)
    path = checkpoints.save_model(model, tmp_path / "compact.h5", meta)
    image = RNG.random((23, 19, 3)).astype(np.float32)
    expected = Upscaler(model, meta, backend="tensorflow", tile=0)(image)
    upscaler = Upscaler(str(path), backend=backend, tile=0)  # converted from the file, PReLU and pixel shuffle
    assert upscaler.backend == backend
    got = upscaler(image)
    assert got.shape == expected.shape == (92, 76, 3)
    assert np.abs(got - expected).max() <= 1e-4
    assert np.abs(to_uint8(got).astype(int) - to_uint8(expected).astype(int)).max() <= 1


def test_bench_speed_times_the_compact_model_against_rrdb_x4_and_pytorch():
    from benchmarks import bench_speed

    gen = next(g for g in bench_speed.generators(tiny=True) if g["key"] == "compact")
    pytest.importorskip("torch")
    net = bench_speed.build_torch(gen)
    assert sum(p.numel() for p in net.parameters()) == bench_speed.build_tf(gen).count_params()

    def rows(wall, cpu):
        return {"rows": [{"size": 256, "wall_s": wall, "cpu_s": cpu}]}

    results = [{"key": "compact", "openvino": rows(3.0, 0.8), "torch": rows(3.2, 1.0)},
               {"key": "rrdb_shipped", "label": "rrdb_x4", "openvino": rows(4.0, 2.0)}]
    found = bench_speed.compact_ratios(results, "openvino")
    assert found["over_rrdb_x4"] == {"256": 0.75} and found["over_rrdb_x4_cpu"] == {"256": 0.4}
    assert found["over_pytorch"]["256"] == pytest.approx(3.0 / 3.2) and found["over_pytorch_cpu"] == {"256": 0.8}
    assert len(found["lines"]) == 2 and "0.400 CPU (goal <= 0.35)" in found["lines"][0]
    assert bench_speed.compact_ratios(results, "tensorflow")["lines"] == []  # nothing timed on TensorFlow
