"""`python -m common.export`: SavedModel / TFLite / ONNX exports of tiny SRCNN, SRResNet and RRDB
models match the Keras model on two input sizes; errors are one line; nothing partial is left."""
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from common import checkpoints, export
from esrgan.models import rrdb_generator
from srcnn.models import srcnn
from srgan.models import srresnet

ROOT = Path(__file__).resolve().parents[2]
SIZES = ((12, 16), (20, 24))  # LR (height, width); the second size runs as a batch of two
TOLERANCE = 1e-4

try:
    import onnxruntime  # noqa: F401
    import tf2onnx  # noqa: F401

    HAVE_ONNX = True
except ImportError:
    HAVE_ONNX = False

TINY = {
    "srcnn": (lambda: srcnn(n1=8, n2=4, padding="reflect"),
              {"architecture": "srcnn", "args": {"n1": 8, "n2": 4, "padding": "reflect"}, "scale": 2,
               "upsampling": "pre", "color": "y", "input_range": [0, 1], "output_range": [0, 1]}),
    "srresnet": (lambda: srresnet(num_filters=8, num_blocks=1),
                 {"architecture": "srresnet", "args": {"num_filters": 8, "num_blocks": 1}, "scale": 4,
                  "upsampling": "post", "color": "rgb", "input_range": [0, 1], "output_range": [-1, 1]}),
    "rrdb": (lambda: rrdb_generator(num_filters=8, num_blocks=1, growth=4),
             {"architecture": "rrdb_generator", "args": {"num_filters": 8, "num_blocks": 1, "growth": 4},
              "scale": 4, "upsampling": "post", "color": "rgb", "input_range": [0, 1], "output_range": [0, 1]}),
}


def randomise(model, seed=0):
    """Non-trivial weights everywhere: biases, PReLU slopes (0 at init) and BN statistics."""
    rng = np.random.default_rng(seed)
    values = []
    for w in model.weights:
        shape, name = tuple(w.shape), w.path
        if "moving_variance" in name:
            values.append(rng.uniform(0.5, 2.0, shape))
        elif "gamma" in name:
            values.append(rng.uniform(0.5, 1.5, shape))
        elif "alpha" in name:
            values.append(rng.uniform(0.05, 0.3, shape))
        elif len(shape) == 1:  # biases, beta, moving_mean
            values.append(rng.normal(0.0, 0.1, shape))
        else:
            values.append(w.numpy())
    model.set_weights([v.astype(np.float32) for v in values])
    return model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """{name: (model, checkpoint path)}, saved once for the module."""
    folder = tmp_path_factory.mktemp("export_checkpoints")
    out = {}
    for name, (build, meta) in TINY.items():
        model = randomise(build())
        out[name] = (model, checkpoints.save_model(model, folder / f"{name}.h5", meta))
    return out


def max_diff(model, run, scale, channels):
    rng = np.random.default_rng(1)
    worst = 0.0
    for batch, (h, w) in enumerate(SIZES, start=1):
        x = rng.uniform(0, 1, (batch, h, w, channels)).astype(np.float32)
        expected = model(x, training=False).numpy()
        got = run(x)
        assert got.shape == expected.shape == (batch, h * scale, w * scale, expected.shape[-1])
        assert got.dtype == np.float32
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


FORMAT_PARAMS = [
    "savedmodel",
    "tflite",
    pytest.param("onnx", marks=pytest.mark.skipif(not HAVE_ONNX, reason="tf2onnx/onnxruntime not installed")),
]


@pytest.mark.parametrize("fmt", FORMAT_PARAMS)
@pytest.mark.parametrize("name", list(TINY))
def test_export_matches_keras_on_two_sizes(tiny, tmp_path, name, fmt):
    model, ckpt = tiny[name]
    meta = TINY[name][1]
    out = tmp_path / f"{name}_export{export.SUFFIXES[fmt]}"
    code = export.main([str(ckpt), "--format", fmt, "-o", str(out), "-q", "--no-verify"])
    assert code == 0
    assert out.is_dir() if fmt == "savedmodel" else out.is_file()

    run = export.load_export(out, fmt)
    scale = 1 if meta["upsampling"] == "pre" else meta["scale"]
    diff = max_diff(model, run, scale, model.input_shape[-1])
    print(f"{name} {fmt}: max |export - keras| = {diff:.3g}")
    assert diff <= TOLERANCE

    info = json.loads(export.meta_path(out).read_text())
    assert info["export_format"] == fmt
    assert info["architecture"] == meta["architecture"] and info["scale"] == meta["scale"]
    assert info["export_input"]["name"] == ("bicubic" if name == "srcnn" else "lr")
    assert info["export_input"]["shape"] == [None, None, None, model.input_shape[-1]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, out.name + ".json"])


@pytest.mark.skipif(not HAVE_ONNX, reason="tf2onnx/onnxruntime not installed")
def test_onnx_export_of_a_one_channel_model_always_returns_rank_4(tiny, tmp_path, monkeypatch):
    """tf2onnx's reshape optimizer sometimes (about 1 conversion in 15, depending on the order in
    which its passes meet the nodes) dropped the Squeeze after the output of a one-channel model:
    SRCNN then returned (1, N, H, W, 1). write_onnx runs tf2onnx without that pass."""
    import onnxruntime
    from tf2onnx import optimizer
    from tf2onnx.optimizer.reshape_optimizer import ReshapeOptimizer

    passes = list(optimizer._optimizers)
    calls = []
    monkeypatch.setattr(ReshapeOptimizer, "_optimize", lambda self, graph: calls.append(graph) or graph)
    model = tiny["srcnn"][0]
    x = np.random.default_rng(0).uniform(0, 1, (1, 12, 16, 1)).astype(np.float32)
    for i in range(6):
        path = tmp_path / f"srcnn{i}.onnx"
        export.write_onnx(model, path)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert session.run([export.OUTPUT_NAME], {session.get_inputs()[0].name: x})[0].shape == x.shape
    assert calls == [] and list(optimizer._optimizers) == passes  # not run; restored afterwards


def test_default_output_is_beside_the_checkpoint_and_verified(tiny, tmp_path, capsys):
    model, _ = tiny["srcnn"]
    ckpt = checkpoints.save_model(model, tmp_path / "m.h5", TINY["srcnn"][1])
    assert export.main([str(ckpt), "--format", "tflite"]) == 0
    printed = capsys.readouterr()
    assert "m.tflite" in printed.out and printed.err == ""
    info = json.loads((tmp_path / "m.tflite.json").read_text())
    assert 0 <= info["export_max_abs_diff"] <= 1e-4
    assert json.loads((tmp_path / "m.json").read_text()).get("export_format") is None  # checkpoint's own JSON
    assert export.default_output("krasserm:srresnet", "onnx") == Path("krasserm_srresnet.onnx")


def files_in(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def test_verification_failure_writes_nothing(tiny, tmp_path, monkeypatch, capsys):
    model, _ = tiny["srcnn"]
    ckpt = checkpoints.save_model(model, tmp_path / "m.h5", TINY["srcnn"][1])
    before = files_in(tmp_path)
    monkeypatch.setattr(export, "load_export", lambda path, fmt: lambda x: np.zeros_like(x) + 1)
    assert export.main([str(ckpt), "--format", "tflite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: tflite export differs from the Keras model") and err.count("\n") == 1
    assert files_in(tmp_path) == before


def fake_savedmodel(model, path, spec=None):
    Path(path).mkdir()
    (Path(path) / "saved_model.pb").write_bytes(b"new")


def test_failed_writer_leaves_no_partial_output(tiny, tmp_path, monkeypatch, capsys):
    model, _ = tiny["srcnn"]
    ckpt = checkpoints.save_model(model, tmp_path / "m.h5", TINY["srcnn"][1])
    before = files_in(tmp_path)

    def broken(model, path):
        Path(path).write_bytes(b"half a flatbuffer")
        raise RuntimeError("converter crashed\nwith a long trace")

    monkeypatch.setitem(export.WRITERS, "tflite", broken)
    assert export.main([str(ckpt), "--format", "tflite"]) == 2
    assert capsys.readouterr().err == f"error: tflite export of {ckpt} failed: converter crashed\n"
    assert files_in(tmp_path) == before  # no output, no JSON, no temporary folder


def test_savedmodel_folder_is_replaced_and_plain_folder_is_a_destination(tiny, tmp_path, monkeypatch):
    model, _ = tiny["srcnn"]
    ckpt = checkpoints.save_model(model, tmp_path / "m.h5", TINY["srcnn"][1])
    monkeypatch.setitem(export.WRITERS, "savedmodel", fake_savedmodel)
    old = tmp_path / "old.savedmodel"
    old.mkdir()
    (old / "saved_model.pb").write_bytes(b"old")
    (old / "variables").mkdir()
    assert export.main([str(ckpt), "--format", "savedmodel", "-o", str(old), "--no-verify", "-q"]) == 0
    assert files_in(old) == ["saved_model.pb"] and (old / "saved_model.pb").read_bytes() == b"new"

    dest = tmp_path / "exports"
    dest.mkdir()
    assert export.main([str(ckpt), "--format", "savedmodel", "-o", str(dest), "--no-verify", "-q"]) == 0
    assert files_in(dest) == ["m.savedmodel", "m.savedmodel.json"]


def test_missing_and_corrupt_checkpoints_are_one_line_errors(tmp_path, capsys):
    assert export.main([str(tmp_path / "nope.h5"), "--format", "tflite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not found" in err and err.count("\n") == 1

    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"this is not HDF5")
    assert export.main([str(bad), "--format", "savedmodel"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not an HDF5 file" in err and err.count("\n") == 1
    assert files_in(tmp_path) == ["bad.h5"]


def test_missing_onnx_dependency_names_the_packages(tiny, tmp_path, monkeypatch, capsys):
    model, _ = tiny["srcnn"]
    ckpt = checkpoints.save_model(model, tmp_path / "m.h5", TINY["srcnn"][1])
    before = files_in(tmp_path)
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # makes `import tf2onnx` raise ImportError
    assert export.main([str(ckpt), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert err == "error: ONNX export needs tf2onnx and onnxruntime: pip install tf2onnx onnxruntime\n"
    assert files_in(tmp_path) == before


def test_module_entry_point(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "common.export", str(tmp_path / "missing.h5"), "--format", "onnx"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    yield
