"""Export a checkpoint for deployment: a TensorFlow SavedModel, a TFLite model or an ONNX graph.

    python -m common.export runs/srgan/srresnet.h5 --format tflite      # -> runs/srgan/srresnet.tflite
    python -m common.export krasserm:srresnet --format onnx -o srresnet_x4.onnx
    python -m common.export ../shared/reference-models/srcnn_v4.h5 --format savedmodel -o srcnn_v4

Every export takes a float32 NHWC batch of any size, shape [None, None, None, C] (C from the model),
in the model's own value range; its input keeps the model's input name ("lr", or "bicubic" for SRCNN)
and its output is named "sr". The checkpoint's metadata is copied to `<output>.json` with
"export_format" (and the input/output names) added: it says how to map pixels to and from the model.

Before anything is moved into place the exported model is run on two random inputs of different sizes
and compared with the Keras model (`--tolerance`, default 1e-3; `--no-verify` skips it). The export is
written in a temporary folder beside the output and renamed into place (the JSON last), so a failure
leaves no partial output. ONNX needs `pip install tf2onnx onnxruntime`.

In Python: `export(checkpoint, fmt, output)` -> (path, metadata); `load_export(path, fmt)` gives a
numpy -> numpy function running a SavedModel (TensorFlow), a TFLite model (the TFLite interpreter,
resized per input size) or an ONNX model (onnxruntime).
"""
import common  # noqa: F401  (quiet TensorFlow import)

import argparse
import contextlib
import datetime
import importlib
import logging
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from common import checkpoints
from common.files import json_text
from common.layers import BlockConv2D

FORMATS = ("savedmodel", "tflite", "onnx")
SUFFIXES = {"savedmodel": ".savedmodel", "tflite": ".tflite", "onnx": ".onnx"}
OUTPUT_NAME = "sr"
ONNX_OPSET = 17
ONNX_HINT = "pip install tf2onnx onnxruntime"
VERIFY_SIZES = ((24, 32), (36, 20))  # (height, width): multiples of 4 for unshuffling models


class ExportError(Exception):
    """An export that cannot be made or does not match its model; the message is one line."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@contextlib.contextmanager
def _quiet():
    """Silence converter chatter: Python warnings, absl/TF/tf2onnx logging."""
    loggers = [logging.getLogger(n) for n in ("absl", "tensorflow", "tf2onnx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _no_stderr():
    """Hide C++ lines written straight to stderr (TFLite's "Created XNNPACK delegate" notice)."""
    return common.silenced_stderr()


# --- the serving function ---------------------------------------------------------------------------


def input_spec(model) -> tf.TensorSpec:
    """float32 [None, None, None, C], named after the model's input."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportError(f"{model.name}: only models with one input and one output can be exported")
    shape = model.inputs[0].shape
    if len(shape) != 4 or shape[-1] is None:
        raise ExportError(f"{model.name}: expected an image input (batch, height, width, channels), got {shape}")
    name = getattr(model.inputs[0], "name", None) or "input"
    name = name.split(":")[0]
    return tf.TensorSpec([None, None, None, int(shape[-1])], tf.float32, name=name)


def serving_function(model):
    """A function of the float32 image batch returning {"sr": float32 batch}."""

    def serve(x):
        return {OUTPUT_NAME: tf.cast(model(x, training=False), tf.float32)}

    return serve


class NearestResize(keras.layers.Layer):
    """Nearest upsampling by integer factors as tf.image.resize (export only, see _tflite_friendly)."""

    def __init__(self, size=(2, 2), **kwargs):
        super().__init__(**kwargs)
        self.size = tuple(int(s) for s in size)

    def call(self, x):
        shape = tf.shape(x)
        return tf.image.resize(x, [shape[1] * self.size[0], shape[2] * self.size[1]], method="nearest")


# --- writers (each writes one file or folder at `path`) ------------------------------------------------


def write_savedmodel(model, path, spec: tf.TensorSpec | None = None) -> None:
    """A SavedModel whose "serving_default" signature is the serving function."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serving_function(model), input_signature=[spec or input_spec(model)])
    with _quiet():
        archive.write_out(str(path), verbose=False)


def _tflite_friendly(model):
    """The model with layers TFLite cannot convert swapped for equivalents (same weights and outputs).

    Keras's nearest UpSampling2D is a pair of tf.repeat ops; with dynamic sizes the TFLite converter
    loses their channel count and cannot convert the next convolution. A nearest resize by an
    integer factor gives the same pixels and converts to RESIZE_NEAREST_NEIGHBOR. BlockConv2D's
    kernel is computed from its weights, which TFLite's CONV_2D does not take: a plain Conv2D.
    """

    def nearest(layer):
        return (isinstance(layer, keras.layers.UpSampling2D) and layer.interpolation == "nearest"
                and layer.data_format == "channels_last")

    if not any(nearest(layer) or isinstance(layer, BlockConv2D) for layer in model.layers):
        return model
    plain = {}

    def swap(layer):
        if nearest(layer):
            return NearestResize(layer.size, name=layer.name)
        if isinstance(layer, BlockConv2D):
            config = layer.get_config()
            config.pop("block")
            plain[layer.name] = keras.layers.Conv2D.from_config(config)
            return plain[layer.name]
        return layer  # others reused, with their weights

    clone = keras.models.clone_model(model, clone_function=swap)
    for name, layer in plain.items():
        layer.set_weights(model.get_layer(name).get_weights())
    return clone


def write_tflite(model, path) -> None:
    """A float32 TFLite model converted from a SavedModel (variables frozen to constants)."""
    spec = input_spec(model)
    with tempfile.TemporaryDirectory(prefix=".savedmodel.", dir=Path(path).parent) as tmp:
        write_savedmodel(_tflite_friendly(model), Path(tmp) / "model", spec)
        with _quiet():
            converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "model"))
            data = converter.convert()
    Path(path).write_bytes(data)


def _import_tf2onnx():
    try:
        with _quiet():
            import tf2onnx
    except ImportError:
        raise ExportError(f"ONNX export needs tf2onnx and onnxruntime: {ONNX_HINT}") from None
    return tf2onnx


@contextlib.contextmanager
def _without_reshape_optimizer():
    """Run tf2onnx without its "reshape_optimizer" pass, which sometimes breaks the graph output.

    tf2onnx turns a transpose that only moves a dimension of size 1 into a Reshape: for a model
    with one output channel (SRCNN on Y) the final NCHW -> NHWC transpose becomes a Reshape of
    the output. The reshape optimizer then rewrites such a Reshape as Reshape to rank 5 followed
    by a Squeeze, inserted with `Graph.insert_node_on_output`, which rewires the consumers of the
    tensor but not the graph outputs. When the Reshape writes the graph output itself (whether it
    does at that point depends on the order in which the optimizer passes meet the nodes, which
    varies from run to run and with tf2onnx's name counter: about 1 conversion in 15 in one
    process), the Squeeze is dropped and the model returns (1, N, H, W, 1). Without the pass the
    Reshape keeps its computed shape (Shape + Gather): the same result, always of rank 4.
    """
    try:
        optimizer = importlib.import_module("tf2onnx.optimizer")
    except ImportError:
        optimizer = None
    passes = getattr(optimizer, "_optimizers", None)  # the passes of tf2onnx 1.9 to 1.17
    if not isinstance(passes, dict) or "reshape_optimizer" not in passes:
        yield
        return
    saved = list(passes.items())
    del passes["reshape_optimizer"]
    try:
        yield
    finally:  # the passes run in this order: restore it in its place
        passes.clear()
        passes.update(saved)


def write_onnx(model, path, opset: int = ONNX_OPSET) -> None:
    """An ONNX graph (NHWC, dynamic batch/height/width) converted with tf2onnx."""
    tf2onnx = _import_tf2onnx()
    spec = input_spec(model)
    function = tf.function(serving_function(model), input_signature=[spec])
    with _quiet(), _without_reshape_optimizer():
        tf2onnx.convert.from_function(function, input_signature=[spec], opset=opset, output_path=str(path))


WRITERS = {"savedmodel": write_savedmodel, "tflite": write_tflite, "onnx": write_onnx}


# --- runners (load an export; call it on a numpy batch) ---------------------------------------------------


def load_export(path, fmt: str):
    """A function numpy float32 NHWC batch -> numpy float32 batch running the exported model."""
    path = Path(path)
    if fmt == "savedmodel":
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures["serving_default"]
        (name,) = signature.structured_input_signature[1].keys()

        def run(x):
            return signature(**{name: tf.constant(x, tf.float32)})[OUTPUT_NAME].numpy()

        run.keep_alive = loaded  # the signature needs its object alive
        return run
    if fmt == "tflite":
        with _quiet():
            interpreter = tf.lite.Interpreter(model_path=str(path))
        (inp,) = interpreter.get_input_details()
        (out,) = interpreter.get_output_details()

        def run(x):
            x = np.asarray(x, np.float32)
            interpreter.resize_tensor_input(inp["index"], x.shape, strict=True)
            with _no_stderr():
                interpreter.allocate_tensors()
            interpreter.set_tensor(inp["index"], x)
            interpreter.invoke()
            return interpreter.get_tensor(out["index"]).copy()

        return run
    if fmt == "onnx":
        try:
            import onnxruntime
        except ImportError:
            raise ExportError(f"running ONNX models needs onnxruntime: {ONNX_HINT}") from None
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run(x):
            return session.run([OUTPUT_NAME], {name: np.asarray(x, np.float32)})[0]

        return run
    raise ExportError(f"unknown format {fmt!r} (choose {', '.join(FORMATS)})")


def max_difference(model, run, channels: int, value_range=(0.0, 1.0), sizes=VERIFY_SIZES, seed=0) -> float:
    """Largest |export - Keras| over random batches of the given (height, width) sizes."""
    rng = np.random.default_rng(seed)
    lo, hi = (float(v) for v in value_range)
    worst = 0.0
    for batch, (h, w) in enumerate(sizes, start=1):
        x = rng.uniform(lo, hi, (batch, h, w, channels)).astype(np.float32)
        expected = np.asarray(model(x, training=False), np.float32)
        got = run(x)
        if got.shape != expected.shape:
            raise ExportError(f"exported model gives shape {got.shape} for {x.shape}, Keras {expected.shape}")
        worst = max(worst, float(np.max(np.abs(got - expected))))
    return worst


# --- atomic export ------------------------------------------------------------------------------------


def default_output(checkpoint, fmt: str) -> Path:
    """X.h5 -> X.tflite / X.onnx / X.savedmodel beside it; "krasserm:srresnet" -> ./krasserm_srresnet.*"""
    text = str(checkpoint)
    source, _, name = text.partition(":")
    if name and not Path(text).exists():
        return Path(f"{source}_{name}{SUFFIXES[fmt]}")
    h5_path = checkpoints.checkpoint_paths(checkpoint)[0]
    return h5_path.with_name(h5_path.name[: -len(".h5")] + SUFFIXES[fmt])


def meta_path(output) -> Path:
    """The metadata written beside an export: `<output>.json` (never the checkpoint's own X.json)."""
    output = Path(output)
    return output.with_name(output.name + ".json")


def _resolve_output(checkpoint, fmt: str, output) -> Path:
    if output is None:
        return default_output(checkpoint, fmt)
    output = Path(output)
    if output.is_dir() and not (output / "saved_model.pb").exists():
        # An existing folder (not a SavedModel): put the export inside it.
        return output / default_output(checkpoint, fmt).name
    if fmt == "savedmodel" and output.exists() and not output.is_dir():
        raise ExportError(f"{output}: exists and is a file, a SavedModel is a folder")
    if fmt != "savedmodel" and output.is_dir():
        raise ExportError(f"{output}: is a SavedModel folder, not a {fmt} file name")
    return output


def _move_into_place(src: Path, dst: Path, trash: Path) -> None:
    """Rename src to dst; an existing folder dst is moved to `trash` first (files are replaced)."""
    if dst.is_dir():
        os.replace(dst, trash)
        try:
            os.replace(src, dst)
        except BaseException:
            os.replace(trash, dst)
            raise
    else:
        os.replace(src, dst)


def export(
    checkpoint,
    fmt: str,
    output=None,
    verify: bool = True,
    tolerance: float = 1e-3,
    opset: int = ONNX_OPSET,
) -> tuple[Path, dict]:
    """Export a checkpoint (anything `checkpoints.load_model` accepts); returns (output path, metadata).

    Raises checkpoints.CheckpointError or ExportError (one-line messages).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (choose {', '.join(FORMATS)})")
    if fmt == "onnx":
        _import_tf2onnx()  # fail before loading anything
        if verify:
            try:
                import onnxruntime  # noqa: F401
            except ImportError:
                raise ExportError(f"ONNX export needs tf2onnx and onnxruntime: {ONNX_HINT}") from None
    output = _resolve_output(checkpoint, fmt, output)
    model, meta = checkpoints.load_model(checkpoint)
    spec = input_spec(model)

    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    try:
        staged = staging / output.name
        try:
            if fmt == "onnx":
                write_onnx(model, staged, opset)
            else:
                WRITERS[fmt](model, staged)
        except ExportError:
            raise
        except Exception as exc:  # converters raise many kinds of errors
            raise ExportError(f"{fmt} export of {checkpoint} failed: {_first_line(exc)}") from None

        info = {
            **meta,
            "export_format": fmt,
            "export_input": {"name": spec.name, "shape": [None, None, None, spec.shape[-1]], "dtype": "float32",
                             "layout": "NHWC"},
            "export_output": {"name": OUTPUT_NAME, "dtype": "float32", "layout": "NHWC"},
            "export_source": str(checkpoint),
            "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        if fmt == "onnx":
            info["export_opset"] = opset
        if verify:
            run = load_export(staged, fmt)
            diff = max_difference(model, run, spec.shape[-1], meta.get("input_range") or (0.0, 1.0))
            if not diff <= tolerance:
                raise ExportError(
                    f"{fmt} export differs from the Keras model by {diff:.3g} (tolerance {tolerance:g}); nothing written"
                )
            info["export_max_abs_diff"] = diff
            del run
        staged_json = staging / "meta.json"
        staged_json.write_text(json_text(info), encoding="utf-8")
        _move_into_place(staged, output, staging / "previous")
        os.replace(staged_json, meta_path(output))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output, info


# --- command line -------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common.export",
        description="Export a checkpoint as a SavedModel, TFLite or ONNX model taking images of any size.",
    )
    parser.add_argument("checkpoint", help="X.h5, X.weights.h5, X, or a named source such as krasserm:srresnet")
    parser.add_argument("--format", "-f", required=True, choices=FORMATS)
    parser.add_argument("-o", "--output", help="output file (SavedModel: folder), or an existing folder to put it in; "
                        "default: beside the checkpoint (X.tflite, X.onnx, X.savedmodel)")
    parser.add_argument("--opset", type=int, default=ONNX_OPSET, help=f"ONNX opset (default {ONNX_OPSET})")
    parser.add_argument("--tolerance", type=float, default=1e-3,
                        help="largest allowed |export - Keras| in the check (default 1e-3)")
    parser.add_argument("--no-verify", action="store_true", help="skip running the export against the model")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        output, info = export(args.checkpoint, args.format, args.output, verify=not args.no_verify,
                              tolerance=args.tolerance, opset=args.opset)
    except (checkpoints.CheckpointError, ExportError) as exc:
        print(f"error: {_first_line(exc)}", file=sys.stderr)
        return 2
    if not args.quiet:
        check = (f", max |diff| vs Keras {info['export_max_abs_diff']:.2g}"
                 if "export_max_abs_diff" in info else "")
        print(f"{output} ({args.format}, input {info['export_input']['name']!r} "
              f"[N, H, W, {info['export_input']['shape'][-1]}]{check}); metadata {meta_path(output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
