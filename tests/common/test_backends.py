"""Backends: OpenVINO and ONNX Runtime give TensorFlow's images on every shipped model, the cache,
the missing-backend error, telemetry off, and a cached run without TensorFlow."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common import backends, checkpoints
from common.images import to_uint8
from common.upscaler import Upscaler
from tests.common.test_checkpoints import POST_META, tiny_post

ROOT = Path(__file__).resolve().parents[2]
THESIS = ROOT.parent / "shared" / "reference-models" / "srcnn_v4.h5"
ENGINES = [b for b in ("openvino", "onnxruntime") if backends.installed(b)]
RNG = np.random.default_rng(7)
IMAGE = RNG.random((23, 19, 3)).astype(np.float32)  # odd sizes: tiles and images not multiples of 4


def shipped_models() -> list[str]:
    found = [str(p.relative_to(ROOT)) for p in sorted(ROOT.glob("*/weights/*.h5"))
             if not p.name.endswith(".weights.h5")]
    if THESIS.is_file():
        found.append(str(THESIS))
    try:
        from srgan.krasserm import weights_dir

        weights_dir()
        found += ["krasserm:srresnet", "krasserm:srgan"]
    except ImportError:
        pass
    return found


MODELS = shipped_models()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """Conversions go to a temporary cache (not beside the shipped weights) once per module."""
    folder = tmp_path_factory.mktemp("sr-cache")
    saved = os.environ.get("SR_CACHE_DIR")
    os.environ["SR_CACHE_DIR"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("SR_CACHE_DIR", None)
    else:
        os.environ["SR_CACHE_DIR"] = saved


@pytest.fixture(scope="module")
def reference(cache_dir):
    """TensorFlow's 8-bit output of every model on IMAGE (and its (model, meta) for the others)."""
    out = {}
    for spec in MODELS:
        model, meta = checkpoints.load_model(spec)
        tf_upscaler = Upscaler(model, meta, backend="tensorflow", tile=0)
        out[spec] = (model, meta, to_uint8(tf_upscaler(IMAGE)).astype(int))
    return out


def test_every_model_is_tested():
    names = " ".join(MODELS)
    for expected in ("srcnn_x2", "srcnn_x3", "srcnn_x4", "srresnet_x4", "rrdb_x4"):
        assert expected in names


@pytest.mark.parametrize("backend", ENGINES)
def test_every_shipped_model_matches_tensorflow(backend, reference):
    for spec in MODELS:
        model, meta, expected = reference[spec]
        upscaler = Upscaler(model, meta, backend=backend, tile=0)
        assert upscaler.backend == backend
        got = to_uint8(upscaler(IMAGE)).astype(int)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1, spec  # within 1/255 after rounding
        if meta.get("upsampling") == "pre":  # SRCNN: small enough a context to tile this image (odd tiles)
            tiled = to_uint8(Upscaler(upscaler.prepared, meta, tile=19)(IMAGE)).astype(int)
            assert np.abs(tiled - expected).max() <= 1, spec


@pytest.mark.parametrize("backend", ENGINES)
def test_tiled_equals_untiled(backend):
    model = tiny_post()
    whole = Upscaler(model, POST_META, backend=backend, tile=0)
    tiled = Upscaler(whole.prepared, POST_META, tile=10, batch_size=3)  # odd tiles, a ragged last batch
    calls = []
    a, b = whole(IMAGE), tiled(IMAGE, progress=lambda done, total: calls.append(total))
    assert calls and calls[-1] >= 4
    assert np.abs(a - b).max() <= 1 / 255


@pytest.mark.parametrize("backend", ENGINES)
def test_cached_conversion_is_reused(backend, tmp_path, monkeypatch):
    monkeypatch.delenv("SR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    path = checkpoints.save_model(tiny_post(), tmp_path / "m.h5", POST_META)
    first = Upscaler(str(path), backend=backend)
    assert "converted in" in first.description and backend in first.description
    entries = list((tmp_path / backends.CACHE_FOLDER).iterdir())
    assert len(entries) == 1 and (entries[0] / "info.json").is_file()  # no temporary left behind
    second = Upscaler(str(path), backend=backend)
    assert "cached conversion" in second.description
    np.testing.assert_array_equal(first(IMAGE), second(IMAGE))
    assert second.meta["scale"] == 2 and second.spec == first.spec
    # new weights, new key: the old conversion is not used
    checkpoints.save_model(tiny_post(), tmp_path / "m.h5", POST_META)
    assert "converted in" in Upscaler(str(path), backend=backend).description
    # ... and it replaces the old one
    assert [p.name for p in (tmp_path / backends.CACHE_FOLDER).iterdir()] != [entries[0].name]
    assert len(list((tmp_path / backends.CACHE_FOLDER).iterdir())) == 1


def _corrupt(entry: Path, how: str) -> None:
    if how == "truncated":
        weights = next(p for p in entry.iterdir() if p.suffix in (".bin", ".onnx"))
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif how == "bit-flipped":  # same size, a few weights changed: only a hash tells
        weights = next(p for p in entry.iterdir() if p.suffix in (".bin", ".onnx"))
        data = bytearray(weights.read_bytes())
        for i in range(len(data) // 2, len(data) - 4, 97):
            data[i] ^= 0x10
        weights.write_bytes(bytes(data))
    else:
        (entry / "info.json").write_text('{"model_info": ')


@pytest.mark.parametrize("how", ["truncated", "bit-flipped", "info.json"])
@pytest.mark.parametrize("backend", ENGINES)
def test_corrupt_cache_entry_is_rebuilt(backend, how, tmp_path, monkeypatch, capsys):
    from common import upscale_cli
    from common.images import read_image, write_image

    monkeypatch.setenv("SR_CACHE_DIR", str(tmp_path / "cache"))
    path = checkpoints.save_model(tiny_post(), tmp_path / "m.h5", POST_META)
    write_image(tmp_path / "a.png", IMAGE)

    def cli(out, backend):
        code = upscale_cli.main([str(tmp_path / "a.png"), "-o", str(tmp_path / out), "--weights", str(path),
                                 "--backend", backend])
        assert code == 0
        return capsys.readouterr().err, read_image(tmp_path / out)

    _, reference = cli("tf.png", "tensorflow")
    err, _ = cli("first.png", backend)
    assert "cached in" in err
    (entry,) = (tmp_path / "cache").iterdir()
    _corrupt(entry, how)
    err, rebuilt = cli("rebuilt.png", backend)
    reason = "info.json is unreadable" if how == "info.json" else "does not match its recorded hash"
    assert f"cached entry {entry} was broken (" in err and reason in err
    assert "removed, converted again; converted in" in err and err.count("\n") == 1
    assert np.abs(rebuilt - reference).max() <= 1 / 255
    err, _ = cli("again.png", backend)
    assert f"cached conversion {entry}" in err  # healed: no conversion on every run


@pytest.mark.parametrize("backend", ENGINES)
def test_any_cache_write_failure_converts_in_memory(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("SR_CACHE_DIR", str(tmp_path / "cache"))
    path = checkpoints.save_model(tiny_post(), tmp_path / "m.h5", POST_META)

    def full_disk(file):
        raise RuntimeError("basic_ios::clear: iostream error")  # what OpenVINO raised on a full disk

    monkeypatch.setattr(backends, "file_hash", full_disk)
    upscaler = Upscaler(str(path), backend=backend, tile=0)
    assert f"cannot cache in {tmp_path / 'cache'} (basic_ios::clear: iostream error); converted in" \
        in upscaler.description
    assert list((tmp_path / "cache").iterdir()) == []  # no temporary left behind
    model, meta = checkpoints.load_model(path)
    expected = Upscaler(model, meta, backend="tensorflow", tile=0)(IMAGE)
    assert np.abs(upscaler(IMAGE) - expected).max() <= 1 / 255


def test_prune_stale_keeps_other_checkpoints_and_live_temporaries(tmp_path):
    here = tmp_path / "weights"
    here.mkdir()
    files = [here / "m.h5"]
    files[0].write_bytes(b"weights")
    key = backends.content_key(files)[:20]
    other_key = "0" * 20 if key != "0" * 20 else "1" * 20

    def entries(place, *names):
        for n in names:
            (place / n).mkdir(parents=True)
        return place

    beside = entries(here / backends.CACHE_FOLDER, f"m-{key}-openvino-9.0-float32-v2",
                     f"m-{key}-openvino-8.0-float32-v2", f"m-{other_key}-openvino-9.0-float32-v1",
                     f"m-{key}-onnxruntime-1.0-float32-v2", f"m2-{key}-openvino-9.0-float32-v2",
                     f"m-{key}-openvino-9.0-bfloat16-v2", f".m-{key}-openvino-9.0-float32-v2.old",
                     f".m-{key}-openvino-9.0-float32-v2.new")
    old = beside / f".m-{key}-openvino-9.0-float32-v2.old"
    os.utime(old, (0, 0))
    new = f"m-{key}-openvino-9.0-float32-v2"
    removed = backends.prune_stale(beside, new, files, "openvino", "float32")
    assert sorted(p.name for p in removed) == sorted([f"m-{key}-openvino-8.0-float32-v2",
                                                       f"m-{other_key}-openvino-9.0-float32-v1", old.name])
    assert len(list(beside.iterdir())) == 5
    # a shared folder: another folder's m.h5 (other content) keeps its entry
    shared = entries(tmp_path / "shared-cache", new, f"m-{key}-openvino-8.0-float32-v1",
                     f"m-{other_key}-openvino-8.0-float32-v1")
    removed = backends.prune_stale(shared, new, files, "openvino", "float32")
    assert [p.name for p in removed] == [f"m-{key}-openvino-8.0-float32-v1"]
    assert sorted(p.name for p in shared.iterdir()) == sorted([new, f"m-{other_key}-openvino-8.0-float32-v1"])


def test_unwritable_checkpoint_folder_uses_the_user_cache(tmp_path, monkeypatch):
    backend = ENGINES[0] if ENGINES else pytest.fail("no converting backend installed")
    monkeypatch.delenv("SR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    share = tmp_path / "share"  # like ../shared or site-packages: no write bits (even root keeps off)
    share.mkdir()
    path = checkpoints.save_model(tiny_post(), share / "m.h5", POST_META)
    share.chmod(0o555)
    try:
        upscaler = Upscaler(str(path), backend=backend)
        assert "user-cache" in upscaler.description
        assert "cached conversion" in Upscaler(str(path), backend=backend).description
        assert sorted(p.name for p in share.iterdir()) == ["m.h5", "m.json", "m.weights.h5"]
    finally:
        share.chmod(0o755)


def test_auto_prefers_openvino(monkeypatch):
    assert backends.choose_backend("auto")[0] == ("openvino" if backends.installed("openvino") else "tensorflow")
    real = backends.installed
    monkeypatch.setattr(backends, "installed", lambda name: name == "tensorflow" or (name != "openvino" and real(name)))
    used, why = backends.choose_backend("auto")
    assert used == "tensorflow" and "OpenVINO is not installed" in why


def test_missing_backend_is_one_line(monkeypatch, tmp_path, capsys):
    from common import upscale_cli
    from common.images import write_image

    monkeypatch.setattr(backends, "installed", lambda name: name == "tensorflow")
    with pytest.raises(backends.BackendError) as caught:
        Upscaler(tiny_post(), POST_META, backend="onnxruntime")
    assert str(caught.value) == "backend onnxruntime is not installed (pip install onnxruntime)"
    path = checkpoints.save_model(tiny_post(), tmp_path / "m.h5", POST_META)
    write_image(tmp_path / "a.png", to_uint8(IMAGE))
    code = upscale_cli.main([str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"), "--weights", str(path),
                             "--backend", "onnxruntime"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["error: --backend: backend onnxruntime is not installed (pip install onnxruntime)"]
    assert not (tmp_path / "b.png").exists()


def _run_python(code: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.skipif("openvino" not in ENGINES, reason="OpenVINO not installed")
def test_cached_run_imports_no_tensorflow_and_sends_no_telemetry(tmp_path):
    path = checkpoints.save_model(tiny_post(), tmp_path / "m.h5", POST_META)
    check = f"""
import json, socket, sys
import numpy as np
attempts = []
socket.socket.connect = lambda self, *a: attempts.append(a)
socket.create_connection = lambda *a, **k: attempts.append(a)
from common.upscaler import Upscaler
u = Upscaler({str(path)!r}, backend="openvino")
u(np.zeros((9, 11, 3), np.float32))
import openvino.tools.ovc.telemetry_utils as t
print(json.dumps({{"how": u.description, "tf": "tensorflow" in sys.modules, "keras": "keras" in sys.modules,
                  "attempts": len(attempts), "telemetry": t.tm.__name__}}))
"""
    env = {"SR_CACHE_DIR": str(tmp_path / "cache")}
    runs = [_run_python(check, env) for _ in range(2)]  # the first converts, the second finds the cache
    for run in runs:
        assert run.returncode == 0, run.stderr
    first, second = (json.loads(run.stdout.strip().splitlines()[-1]) for run in runs)
    assert "converted in" in first["how"] and first["tf"]
    assert "cached conversion" in second["how"]
    assert not second["tf"] and not second["keras"]
    for result in (first, second):
        assert result["attempts"] == 0 and result["telemetry"].endswith("telemetry_stub")


def test_evaluate_json_names_the_backend(tmp_path):
    from common import evaluate as ev
    from common.images import write_image

    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        write_image(data / f"img{i}.png", to_uint8(RNG.random((20, 22, 3))))
    path = checkpoints.save_model(tiny_post(), tmp_path / "m.h5", POST_META)
    psnr = {}
    for backend in ["tensorflow"] + ENGINES:
        out = tmp_path / f"{backend}.json"
        assert ev.main(["--model", str(path), "--data", str(data), "--scale", "2", "--json", str(out),
                        "--backend", backend]) == 0
        result = json.loads(out.read_text())
        assert result["backend"] == backend
        psnr[backend] = result["psnr"]
    assert max(psnr.values()) - min(psnr.values()) <= 0.01


@pytest.mark.skipif("openvino" not in ENGINES, reason="OpenVINO not installed")
def test_openvino_static_shapes_compile_once_per_shape():
    """A runner compiled per input shape gives the dynamic model's images for two tile sizes, keeps
    one compiled model per shape met, and drops the least recently used beyond OPENVINO_SHAPES."""
    model = tiny_post()
    dynamic = Upscaler(model, POST_META, backend="openvino", tile=0)
    ov_model = dynamic.prepared.runner.model
    static = backends.OpenVINORunner(ov_model, static_shapes=True)
    prepared = backends.Prepared(static, dynamic.prepared.info, POST_META, "openvino", "float32")
    fed = []
    recording = backends.Prepared(lambda x: fed.append(x.shape) or dynamic.prepared.runner(x), dynamic.prepared.info,
                                  POST_META, "openvino", "float32")
    for tile in (10, 13):  # odd tiles, full batches of 4 and a ragged last batch
        expected = to_uint8(Upscaler(recording, POST_META, tile=tile, batch_size=4)(IMAGE)).astype(int)
        got = to_uint8(Upscaler(prepared, POST_META, tile=tile, batch_size=4)(IMAGE)).astype(int)
        assert np.abs(got - expected).max() <= 1, tile
    assert len(set(fed)) >= 3 and {s[1:] for s in fed} == {(10, 10, 3), (13, 13, 3)}
    assert sorted(static.shapes) == sorted(set(fed))  # one compile per shape, not per call
    assert dynamic.prepared.runner.shapes == [None]
    for side in range(8, 8 + backends.OPENVINO_SHAPES + 1):
        static(np.zeros((1, side, side, 3), np.float32))
    assert len(static.shapes) == backends.OPENVINO_SHAPES
    assert static.shapes[-1] == (1, 8 + backends.OPENVINO_SHAPES, 8 + backends.OPENVINO_SHAPES, 3)
    assert (1, 8, 8, 3) not in static.shapes  # the oldest went first


@pytest.mark.skipif("openvino" not in ENGINES, reason="OpenVINO not installed")
def test_openvino_bfloat16_runner(monkeypatch, tmp_path):
    """bfloat16 on OpenVINO (an explicit runner option): refused in one line on a CPU without native
    bfloat16; where the CPU has it, the image is close to float32's but not equal (it did run bf16)."""
    from common import precision

    f32 = Upscaler(tiny_post(), POST_META, backend="openvino", tile=0)
    model = f32.prepared.runner.model
    if backends.native_bfloat16_cpu():
        bf16 = backends.OpenVINORunner(model, precision="bfloat16")
        assert bf16.config["INFERENCE_PRECISION_HINT"] == "bf16"
        x = RNG.random((1, 16, 12, 3)).astype(np.float32)
        a, b = f32.prepared.runner(x), bf16(x)
        scale = np.abs(a).max()
        assert 0 < np.abs(a - b).max() <= 0.02 * scale
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma avx512f\n\n")
    monkeypatch.setattr(precision, "CPUINFO", cpuinfo)
    with pytest.raises(backends.BackendError) as caught:
        backends.OpenVINORunner(model, precision="bfloat16")
    assert str(caught.value).startswith("OpenVINO runs bfloat16 only on CPUs with AVX512-BF16") and "\n" not in str(caught.value)
    assert backends.OpenVINORunner(model).config["INFERENCE_PRECISION_HINT"] == "f32"  # float32 is unaffected


def _upsampling_model():
    """Convs around nearest UpSampling2D layers, one of them inside a nested model, factors unequal."""
    import keras

    inner_in = keras.Input((None, None, 4))
    inner = keras.Model(inner_in, keras.layers.UpSampling2D((1, 3))(inner_in), name="inner")
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = inner(keras.layers.UpSampling2D(2, name="up")(x))
    return keras.Model(inp, keras.layers.Conv2D(3, 3, padding="same")(x))


@pytest.mark.skipif("openvino" not in ENGINES, reason="OpenVINO not installed")
def test_openvino_nearest_upsampling_converts_to_one_interpolate(tmp_path):
    """Nearest UpSampling2D reaches OpenVINO as Interpolate (no Tile: Keras's repeat is not converted),
    with the Keras model's output; the Keras model itself is left as it was."""
    model = _upsampling_model()
    x = RNG.random((2, 7, 5, 3)).astype(np.float32)
    expected = model(x).numpy()
    backends.convert_openvino(model, tmp_path / "model.xml")
    runner = backends.OpenVINORunner(tmp_path / "model.xml")
    types = [op.get_type_name() for op in runner.model.get_ops()]
    assert types.count("Interpolate") == 2 and "Tile" not in types
    got = runner(x)
    assert got.shape == expected.shape == (2, 14, 30, 3)
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()
    assert [type(layer).__name__ for layer in model.layers].count("UpSampling2D") == 1  # untouched
    assert np.array_equal(model(x).numpy(), expected)


@pytest.mark.skipif("openvino" not in ENGINES, reason="OpenVINO not installed")
def test_openvino_threads_share_work_dynamically():
    """The compiled model runs with TBB's auto partitioner where OpenVINO has the setting; a caller's
    config still wins."""
    from common.backends import _openvino

    model = Upscaler(tiny_post(), POST_META, backend="openvino", tile=0).prepared.runner.model
    if "TBB_PARTITIONER" not in _openvino().Core().get_property("CPU", "SUPPORTED_PROPERTIES"):
        pytest.skip("this OpenVINO has no TBB_PARTITIONER")
    compiled = backends.OpenVINORunner(model)._request(None).get_compiled_model()
    assert str(compiled.get_property("TBB_PARTITIONER")).endswith("AUTO")
    compiled = backends.OpenVINORunner(model, {"TBB_PARTITIONER": "STATIC"})._request(None).get_compiled_model()
    assert str(compiled.get_property("TBB_PARTITIONER")).endswith("STATIC")
