"""Engines that run a Keras image model: TensorFlow (the reference), OpenVINO and ONNX Runtime.

`prepare(model_or_checkpoint, backend, precision)` gives a `Prepared`: a runner (float32 NHWC batch
in the model's input range -> float32 batch in its output range, any height and width), the model's
ModelInfo and metadata, and the backend actually used. OpenVINO and ONNX Runtime run a copy of the
model converted in this process at load time, with dynamic batch, height and width: OpenVINO from a
tf.function of the model (openvino.convert_model), ONNX Runtime from common.export.write_onnx's graph.

A converted checkpoint is cached beside it in `.sr-cache/` (where that folder cannot be written, as
in site-packages or a read-only share: in $XDG_CACHE_HOME/sr-thesis or ~/.cache/sr-thesis; only in
$SR_CACHE_DIR when that is set), keyed by the checkpoint files' content hash, the backend and its version, and the precision; each entry is written in a
temporary folder and renamed into place, its info.json (ModelInfo, metadata and the SHA-256 of every
file of the entry) last; a run checks those hashes before using an entry, and an entry that fails
(truncated, bit flips, unreadable info.json) is said so in the description line, removed and
converted again. A cache that cannot be written for any reason (read-only, full disk, any error of
the converter's writer) leaves the conversion in memory for this run, said so too. Writing an
entry removes the entries it replaces (prune_stale): beside the checkpoint, every older conversion
of that file name for the same backend and precision; in a shared cache folder, those of the same
content only (another folder's checkpoint may have the same name); and temporary folders of that
name left by a killed run. A run that
finds its entry imports neither TensorFlow nor Keras. OpenVINO's usage telemetry is kept off: its
package is hidden before OpenVINO is imported, so OpenVINO's converter uses its built-in stub.

OpenVINO runs the dynamic-shape model compiled once, in float32, its threads sharing each layer's
work dynamically (TBB's auto partitioner: a thread slowed by another process no longer holds the
layer up). Before converting, nearest-neighbour UpSampling2D layers (Keras repeats each axis, which
OpenVINO runs as Tile + Transpose + layout reorders) are replaced by the same resize as one
Interpolate node. OpenVINORunner can also compile a copy per input shape (static_shapes) and run
bfloat16 on CPUs with AVX512-BF16/AMX; neither is used by prepare() (benchmarks.bench_openvino_options
measures them: per-shape compiles saved about 3 % of RRDB's CPU time, less than a compile per new
image size costs; bfloat16 halves it but moves the shipped models' Set5 PSNR by up to 0.05 dB, more
than the 0.01 dB a default may).

int8 (OpenVINO only): the float32 conversion (from its cache entry, or converted and cached) is
quantized by common.quantize (NNCF post-training quantization on training patches) once, said so in
the description line with its time, and cached as its own entry beside the float32 one: same content
key, its version field naming OpenVINO, NNCF and the quantization recipe, precision int8, the same
SHA-256 checks and rebuilding of broken entries. It is compiled with float32 arithmetic for the
layers left unquantized. TensorFlow and ONNX Runtime refuse int8 (BackendError, option "--precision int8").
"""
import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import time
import weakref
from pathlib import Path

from common.model_analysis import InferenceError, ModelInfo, analyze_model

BACKENDS = ("auto", "tensorflow", "openvino", "onnxruntime")
PIP_NAME = {"openvino": "openvino", "onnxruntime": "onnxruntime"}
CACHE_FOLDER = ".sr-cache"
CACHE_VERSION = 3  # 2: OpenVINO conversions resize with Interpolate; 3: file hashes in info.json
CHECKPOINT_SUFFIXES = (".weights.h5", ".h5", ".json")
# OpenVINO CPU settings: one request at a time on all cores (OpenVINO's own default on this kind of
# CPU would be bfloat16 arithmetic where the CPU has it: the precision is always set explicitly).
OPENVINO_CONFIG = {"PERFORMANCE_HINT": "LATENCY"}
# Set where OpenVINO has them (older versions refuse unknown properties): each layer's work shared
# out dynamically rather than in fixed equal parts, which wait for a thread another process slowed.
OPENVINO_OPTIONAL = {"TBB_PARTITIONER": "AUTO"}
OPENVINO_PRECISION = {"float32": "f32", "bfloat16": "bf16", "int8": "f32"}  # int8: unquantized layers in f32
# Compiled copies of a model kept per OpenVINORunner, one per input shape (least recently used out).
OPENVINO_SHAPES = 4


class BackendError(InferenceError):
    """A backend that is not installed or cannot run the requested precision (one line). `option` is
    the command-line option to blame; the message of one about --precision starts with it."""

    def __init__(self, message: str, option: str = "--backend"):
        super().__init__(message)
        self.option = option


def _int8_refused(reason: str) -> BackendError:
    return BackendError(f"--precision int8: {reason}", option="--precision int8")


class ModelLoadError(InferenceError):
    """A checkpoint that cannot be loaded (the message of common.checkpoints.CheckpointError)."""


# --- which backend ------------------------------------------------------------------------------


def installed(backend: str) -> bool:
    if backend == "tensorflow":
        return True
    return importlib.util.find_spec(backend) is not None


def choose_backend(backend: str = "auto", precision: str = "float32") -> tuple[str, str | None]:
    """(the backend to use, why "auto" chose it or None). Raises BackendError.

    auto = OpenVINO when installed, else TensorFlow. bfloat16 runs on TensorFlow (auto), or on
    OpenVINO when asked for by name on a CPU with AVX512-BF16/AMX-BF16 (elsewhere OpenVINO's bf16 is
    emulated); ONNX Runtime's CPU kernels have none. TensorFlow keeps the first and last layers in
    float32, OpenVINO computes everything in bfloat16 (faster, a little further from float32).
    """
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    if precision == "int8":
        if backend in ("tensorflow", "onnxruntime"):
            raise _int8_refused(f"the {backend} backend has no quantized graph; int8 runs on OpenVINO only "
                                "(--backend openvino or auto)")
        if not installed("openvino"):
            raise _int8_refused("int8 runs on OpenVINO, which is not installed (pip install openvino nncf)")
        return "openvino", None
    if backend == "auto":
        if precision == "bfloat16":
            return "tensorflow", "auto: bfloat16 runs on TensorFlow only"
        if installed("openvino"):
            return "openvino", None
        return "tensorflow", "auto: OpenVINO is not installed"
    if not installed(backend):
        raise BackendError(f"backend {backend} is not installed (pip install {PIP_NAME[backend]})")
    if precision == "bfloat16" and backend == "openvino" and not native_bfloat16_cpu():
        raise BackendError("backend openvino runs bfloat16 only on CPUs with AVX512-BF16 or AMX-BF16; this one "
                           "has neither (use --backend tensorflow)")
    if precision == "bfloat16" and backend not in ("tensorflow", "openvino"):
        raise BackendError(f"backend {backend} runs float32 only; bfloat16 needs --backend tensorflow or openvino")
    return backend, None


def native_bfloat16_cpu() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16); GPUs do not count here."""
    from common.precision import NATIVE_CPU_FLAGS, cpu_flags

    return bool(cpu_flags() & set(NATIVE_CPU_FLAGS))


def version(backend: str) -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version(backend)
    except PackageNotFoundError:
        return "?"


# --- TensorFlow ---------------------------------------------------------------------------------

_FUNCTIONS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_CAST: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_devices_ready = False


def _tensorflow():
    global _devices_ready
    import tensorflow as tf

    if not _devices_ready:
        from common.runtime import setup_devices

        setup_devices()  # GPUs grow their memory instead of taking all of it
        _devices_ready = True
    return tf


def _compiled(model, precision: str = "float32"):
    """model(x, training=False) in `precision` as one tf.function traced once for any tile size."""
    tf = _tensorflow()
    if precision == "bfloat16":
        from common.precision import cast_model

        if model not in _CAST:
            _CAST[model] = cast_model(model, "bfloat16")
        else:  # the model may have trained since: copy its current (float32) weights
            for mine, theirs in zip(_CAST[model].weights, model.weights):
                mine.assign(theirs)
        model = _CAST[model]
    fn = _FUNCTIONS.get(model)
    if fn is None:
        ref = weakref.ref(model)
        channels = int(model.inputs[0].shape[-1])

        def call(x):
            return tf.cast(ref()(x, training=False), tf.float32)

        fn = tf.function(call, input_signature=[tf.TensorSpec([None, None, None, channels], tf.float32)])
        _FUNCTIONS[model] = fn
    return fn


class TensorFlowRunner:
    """The Keras model itself; bfloat16 runs a cast copy refreshed from the model's weights per call."""

    def __init__(self, model, precision: str = "float32"):
        self.model, self.precision = model, precision
        _compiled(model, precision)

    def __call__(self, x):
        import tensorflow as tf

        return _compiled(self.model, self.precision)(tf.constant(x, tf.float32)).numpy()


# --- OpenVINO -----------------------------------------------------------------------------------


def _openvino():
    """Import OpenVINO with its telemetry off (its converter falls back to a no-op stub when the
    openvino_telemetry package cannot be imported)."""
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)
    import openvino

    return openvino


def _nearest_upsamplers(model) -> list:
    """The model's UpSampling2D layers (nested models included) that repeat pixels, channels last."""
    import keras

    found = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.UpSampling2D):
            if layer.interpolation == "nearest" and layer.data_format == "channels_last":
                found.append(layer)
        elif isinstance(layer, keras.Model):
            found += _nearest_upsamplers(layer)
    return found


def resize_nearest_for_openvino(model):
    """The model with its nearest UpSampling2D layers computing the same pixels by tf.image.resize
    (one Interpolate node in OpenVINO instead of Tile + Transpose + reorders); other layers are
    shared, not copied. The model itself when it has none or is not a functional/Sequential model."""
    import keras

    tf = _tensorflow()

    class NearestResize(keras.layers.Layer):
        # not registered for saving: it lives only for a conversion
        def __init__(self, size, **kwargs):
            super().__init__(**kwargs)
            self.size = tuple(size)

        def call(self, x):
            # half-pixel centres with an integer factor: output pixel i reads input pixel i // factor
            shape = tf.shape(x)
            return tf.image.resize(x, [shape[1] * self.size[0], shape[2] * self.size[1]], method="nearest")

        def compute_output_shape(self, input_shape):
            b, h, w, c = input_shape
            return (b, None if h is None else h * self.size[0], None if w is None else w * self.size[1], c)

    upsamplers = {id(layer) for layer in _nearest_upsamplers(model)}
    if not upsamplers:
        return model

    def clone(layer):
        return NearestResize(layer.size, name=layer.name) if id(layer) in upsamplers else layer

    try:
        return keras.models.clone_model(model, clone_function=clone, recursive=True)
    except ValueError:  # a subclassed model: its layers cannot be swapped
        return model


def openvino_model(model):
    """The Keras model as an in-memory OpenVINO model (float32, dynamic N/H/W)."""
    tf = _tensorflow()
    ov = _openvino()
    model = resize_nearest_for_openvino(model)
    channels = int(model.inputs[0].shape[-1])
    function = tf.function(lambda x: tf.cast(model(x, training=False), tf.float32),
                           input_signature=[tf.TensorSpec([None, None, None, channels], tf.float32)])
    return ov.convert_model(function)


def convert_openvino(model, path: Path) -> None:
    """Write the Keras model as OpenVINO IR (path .xml + .bin), float32 weights, dynamic N/H/W."""
    _openvino().save_model(openvino_model(model), str(path), compress_to_fp16=False)


class OpenVINORunner:
    """An OpenVINO IR (a path) or ov.Model on the CPU, in float32 or bfloat16 arithmetic.

    static_shapes: compile a copy of the model reshaped to each input shape met (a tiled image has
    one or two: full batches and a ragged last one), keeping the OPENVINO_SHAPES most recent; else
    one compile of the dynamic-shape model. The first call with a new shape pays its compile.
    """

    def __init__(self, path_or_model, config=None, precision: str = "float32", static_shapes: bool = False):
        if precision == "bfloat16" and not native_bfloat16_cpu():
            # OpenVINO would run float32 or emulate without saying so: refuse rather than mislabel
            raise BackendError("OpenVINO runs bfloat16 only on CPUs with AVX512-BF16 or AMX-BF16; this one has "
                               "neither (use float32)")
        ov = _openvino()
        self.core = ov.Core()
        self.model = (self.core.read_model(str(path_or_model)) if isinstance(path_or_model, (str, Path))
                      else path_or_model)
        supported = self.core.get_property("CPU", "SUPPORTED_PROPERTIES")
        optional = {k: v for k, v in OPENVINO_OPTIONAL.items() if k in supported}
        self.config = {**OPENVINO_CONFIG, **optional, "INFERENCE_PRECISION_HINT": OPENVINO_PRECISION[precision],
                       **(config or {})}
        self.static_shapes = static_shapes
        self._requests: dict = {}  # input shape (None: dynamic) -> infer request, oldest first
        if not static_shapes:
            self._request(None)

    def _request(self, shape):
        key = tuple(shape) if self.static_shapes else None
        request = self._requests.pop(key, None)
        if request is None:
            model = self.model
            if key is not None:
                model = model.clone()
                model.reshape({model.inputs[0]: list(key)})
            request = self.core.compile_model(model, "CPU", self.config).create_infer_request()
            while len(self._requests) >= OPENVINO_SHAPES:
                self._requests.pop(next(iter(self._requests)))
        self._requests[key] = request  # now the most recent
        return request

    @property
    def shapes(self) -> list:
        """The input shapes compiled for, oldest first ([None]: the dynamic model)."""
        return list(self._requests)

    def __call__(self, x):
        return self._request(x.shape).infer([x], share_inputs=True, share_outputs=False)[0]


# --- ONNX Runtime -------------------------------------------------------------------------------


def convert_onnx(model, path: Path) -> None:
    from common.export import write_onnx

    write_onnx(model, path)


class OnnxRuntimeRunner:
    def __init__(self, path: Path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x):
        return self.session.run(None, {self.input: x})[0]


CONVERTERS = {"openvino": (convert_openvino, "model.xml", OpenVINORunner),
              "onnxruntime": (convert_onnx, "model.onnx", OnnxRuntimeRunner)}


# --- the cache ----------------------------------------------------------------------------------


def checkpoint_files(source) -> list[Path]:
    """The files of a checkpoint given as a path (X.h5 / X.weights.h5 / X, with X.json); [] when
    `source` is not a file on disk (a model object, or a named source such as krasserm:srgan)."""
    if not isinstance(source, (str, Path)) or not str(source):
        return []
    path = Path(source)
    name = path.name
    for suffix in CHECKPOINT_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if path.name.endswith(".weights.h5"):
        weights = [path.with_name(name + ".weights.h5")]
    elif path.name.endswith(".h5"):
        weights = [path]
    else:  # as common.checkpoints: X.h5 before X.weights.h5
        weights = [p for p in (path.with_name(name + ".h5"), path.with_name(name + ".weights.h5")) if p.is_file()][:1]
    if not weights or not weights[0].is_file():
        return []
    meta = path.with_name(name + ".json")
    return weights + ([meta] if meta.is_file() else [])


def content_key(files) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def cache_places(checkpoint: Path) -> list[Path]:
    """Folders that may hold the cached conversions of `checkpoint`, in the order tried."""
    if os.environ.get("SR_CACHE_DIR"):
        return [Path(os.environ["SR_CACHE_DIR"])]
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return [checkpoint.parent / CACHE_FOLDER, Path(base) / "sr-thesis"]


def _stem(files) -> str:
    return files[0].name.split(".")[0]


def cache_entry_name(files, backend: str, precision: str) -> str:
    """stem-contentkey-backend-version-precision-vN; an int8 entry's version also names NNCF and the
    quantization recipe (a new one replaces it; prune_stale matches any version)."""
    release = version(backend)
    if precision == "int8":
        from common.quantize import RECIPE, nncf_version

        release += f"+nncf{nncf_version()}.r{RECIPE}"
    return f"{_stem(files)}-{content_key(files)[:20]}-{backend}-{release}-{precision}-v{CACHE_VERSION}"


STALE_TEMPORARY_SECONDS = 3600  # a temporary entry folder this old belongs to no live conversion


def prune_stale(place: Path, name: str, files, backend: str, precision: str) -> list[Path]:
    """Remove the entries in `place` that the freshly written entry `name` replaces; returns them.

    Beside the checkpoint (place is its .sr-cache) any content key counts, since the file name names
    one checkpoint; in a shared folder only the same content key (older backend or cache versions)."""
    stem = _stem(files)
    beside = place == files[0].parent / CACHE_FOLDER
    key = r"[0-9a-f]{20}" if beside else re.escape(name[len(stem) + 1:][:20])  # the key `name` was made with
    entry = re.compile(rf"{re.escape(stem)}-{key}-{re.escape(backend)}-.+-{re.escape(precision)}-v\d+")
    removed = []
    for folder in place.iterdir():
        if not folder.is_dir():
            continue
        if folder.name.startswith(f".{stem}-"):  # a killed run's temporary folder
            try:
                stale = time.time() - folder.stat().st_mtime > STALE_TEMPORARY_SECONDS
            except OSError:
                continue
        else:
            stale = folder.name != name and entry.fullmatch(folder.name) is not None
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


MAX_INFO_BYTES = 16 << 20  # an entry's info.json is a few KB


class BrokenEntry(Exception):
    """A cache entry that exists but cannot be trusted; the message says why (one line)."""


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_entry(folder: Path, model_file: str):
    """(ModelInfo, meta) of a cache entry whose files all match their recorded hashes; None when
    there is no entry; BrokenEntry when there is one that is not whole."""
    if not folder.exists():
        return None
    try:
        if (folder / "info.json").stat().st_size > MAX_INFO_BYTES:
            raise BrokenEntry(f"info.json is over {MAX_INFO_BYTES >> 20} MiB")
        info = json.loads((folder / "info.json").read_text())
        hashes = info["files"]
        if not isinstance(hashes, dict) or model_file not in hashes:
            raise BrokenEntry(f"info.json lists no {model_file}")
        present = {p.name for p in folder.iterdir()} - {"info.json"}
        if present != set(hashes):
            raise BrokenEntry(f"holds {sorted(present)}, info.json lists {sorted(hashes)}")
        for name, expected in hashes.items():
            if file_hash(folder / name) != expected:
                raise BrokenEntry(f"{name} does not match its recorded hash")
        return ModelInfo(**info["model_info"]), info["meta"]
    except BrokenEntry:
        raise
    except OSError as exc:
        raise BrokenEntry(f"cannot read ({exc.strerror or exc})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BrokenEntry(f"info.json is unreadable ({type(exc).__name__}: {exc})".splitlines()[0]) from None


def _entry_or_none(folder: Path, model_file: str):
    try:
        return _read_entry(folder, model_file)
    except BrokenEntry:
        return None


def _writable(folder: Path) -> bool:
    """Whether `folder` (or the nearest existing folder above it) may be written: it has a write bit
    and we have access. The write bits count even for root, who could write a read-only share."""
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        return bool(folder.stat().st_mode & 0o222) and os.access(folder, os.W_OK)
    except OSError:
        return False


def _write_entry(parent: Path, name: str, write_model, model_file: str, info: ModelInfo, meta: dict,
                 extra: dict | None = None) -> Path:
    """Write one cache entry atomically into parent/name; returns its folder. Raises OSError, or
    whatever `write_model` raises (OpenVINO reports a full disk as RuntimeError)."""
    if not _writable(parent):
        raise PermissionError(f"{parent} is read-only")
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=parent))
    try:
        write_model(tmp / model_file)
        hashes = {p.name: file_hash(p) for p in sorted(tmp.iterdir())}
        payload = {"model_info": dataclasses.asdict(info), "meta": meta, "files": hashes,
                   "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **(extra or {})}
        (tmp / "info.json").write_text(json.dumps(payload, indent=1, default=str))
        if _entry_or_none(tmp, model_file) is None:  # e.g. a full disk cut a file short unnoticed
            raise OSError(f"the entry written in {tmp} does not read back whole")
        final = parent / name
        try:
            os.rename(tmp, final)
        except OSError:
            if _entry_or_none(final, model_file) is None:  # not another process's finished entry
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --- preparing a model ------------------------------------------------------------------------------


@dataclasses.dataclass
class Prepared:
    """A model ready to run: runner, what it does (info, meta) and how it runs."""

    runner: object
    info: ModelInfo
    meta: dict
    backend: str
    precision: str
    note: str = ""  # how the runner came about, for the one line that names the backend

    @property
    def description(self) -> str:
        return f"backend: {self.backend} {version(self.backend)}" + (f" ({self.note})" if self.note else "")


def load_keras(source):
    """(model, meta) of a checkpoint or named source, as common.checkpoints.load_model."""
    from common import checkpoints

    try:
        return checkpoints.load_model(source)
    except checkpoints.CheckpointError as exc:
        raise ModelLoadError(str(exc)) from None


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def prepare(source, backend: str = "auto", precision: str = "float32") -> Prepared:
    """Load (or take) a model and make it runnable on `backend` in `precision` (float32/bfloat16/int8).

    source: a Keras model, or a checkpoint (path or named source) as common.checkpoints.load_model
    takes. Raises BackendError, ModelLoadError or InferenceError.
    """
    backend, why = choose_backend(backend, precision)
    model = meta = None
    if not isinstance(source, (str, Path)):
        model, meta = source, {}
    if backend == "tensorflow":
        if model is None:
            model, meta = load_keras(source)
        return Prepared(TensorFlowRunner(model, precision), analyze_model(model), meta, backend, precision,
                        why or "")
    if precision == "int8":
        return _prepare_int8(source, model, meta)
    convert, model_file, runner_class = CONVERTERS[backend]
    if backend == "openvino":
        runner_class = functools.partial(runner_class, precision=precision)
    files = checkpoint_files(source) if model is None else []
    # the converted graph is float32; OpenVINO computes it in `precision` when it compiles
    name = cache_entry_name(files, backend, "float32") if files else None
    places = cache_places(files[0]) if files else []
    notes = []
    for place in places:
        folder = place / name
        try:
            found = _read_entry(folder, model_file)
            if found is not None:
                return Prepared(runner_class(folder / model_file), *found, backend, precision,
                                f"cached conversion {_shown(folder)}")
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001  (BrokenEntry, or a runner that cannot read it)
            shutil.rmtree(folder, ignore_errors=True)
            reason = _first_line(exc)
            notes.append(f"cached entry {_shown(folder)} was broken ({reason}): removed, converted again")
    start = time.perf_counter()
    if model is None:
        model, meta = load_keras(source)
    info = analyze_model(model)
    if backend == "openvino":  # converted once in memory: a failure to save it is the cache's alone
        converted = openvino_model(model)

        def write(path):
            _openvino().save_model(converted, str(path), compress_to_fp16=False)

        def in_memory():
            return runner_class(converted)
    else:
        def write(path):
            convert(model, path)

        def in_memory():
            return _convert_in_memory(backend, model, model_file, runner_class)
    for place in places:
        try:
            folder = _write_entry(place, name, write, model_file, info, meta)
        except Exception as exc:  # noqa: BLE001  (read-only, full disk, the converter's writer: next place)
            if _writable(place):  # a read-only place is the expected case, not worth a line
                notes.append(f"cannot cache in {_shown(place)} ({_first_line(exc)})")
            continue
        prune_stale(place, name, files, backend, "float32")
        runner = runner_class(folder / model_file)
        notes.append(f"converted in {time.perf_counter() - start:.1f} s, cached in {_shown(folder)}")
        return Prepared(runner, info, meta, backend, precision, "; ".join(notes))
    runner = in_memory()
    notes.append(f"converted in {time.perf_counter() - start:.1f} s" + ("" if files else ", not cached"))
    return Prepared(runner, info, meta, backend, precision, "; ".join(notes))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]


def _convert_in_memory(backend: str, model, model_file: str, runner_class):
    """A runner of a conversion that touches no cache (ONNX goes through a temporary file)."""
    convert = CONVERTERS[backend][0]
    with tempfile.TemporaryDirectory(prefix="sr-convert-") as tmp:
        path = Path(tmp) / model_file
        convert(model, path)
        return runner_class(path)


def _lookup(places, name: str, model_file: str, runner_class, notes: list):
    """(runner, ModelInfo, meta, folder) of the first whole cache entry `name` in `places`, or None.
    A broken entry (or one the runner cannot read) is removed and said so in `notes`."""
    for place in places:
        folder = place / name
        try:
            found = _read_entry(folder, model_file)
            if found is not None:
                return (runner_class(folder / model_file), *found, folder)
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001  (BrokenEntry, or a runner that cannot read it)
            shutil.rmtree(folder, ignore_errors=True)
            notes.append(f"cached entry {_shown(folder)} was broken ({_first_line(exc)}): removed, converted again")
    return None


def _float32_openvino(source, model, meta, files, places, notes):
    """(float32 ov.Model, ModelInfo, meta) for quantizing: read from its cache entry when that is
    whole, else converted from the Keras model and cached (quietly: the int8 line says the rest)."""
    name = cache_entry_name(files, "openvino", "float32") if files else None
    for place in places:
        found = _entry_or_none(place / name, "model.xml")
        if found is not None:
            try:
                return _openvino().Core().read_model(str(place / name / "model.xml")), *found
            except Exception:  # noqa: BLE001  (unreadable despite its hashes: convert again)
                pass
    if model is None:
        model, meta = load_keras(source)
    info = analyze_model(model)
    converted = openvino_model(model)

    def write(path):
        _openvino().save_model(converted, str(path), compress_to_fp16=False)

    for place in places:
        try:
            _write_entry(place, name, write, "model.xml", info, meta)
        except Exception:  # noqa: BLE001  (the int8 entry's own attempt says why)
            continue
        prune_stale(place, name, files, "openvino", "float32")
        break
    return converted, info, meta


def _prepare_int8(source, model, meta) -> Prepared:
    """prepare() for precision int8 on OpenVINO: the cached int8 entry, or the float32 conversion
    quantized by common.quantize now (one line with its time) and cached."""
    from common.model_analysis import spec_from_info
    from common.quantize import QuantizationError, quantize_for_openvino

    backend, model_file = "openvino", "model.xml"
    runner_class = functools.partial(OpenVINORunner, precision="int8")
    files = checkpoint_files(source) if model is None else []
    name = cache_entry_name(files, backend, "int8") if files else None
    places = cache_places(files[0]) if files else []
    notes: list = []
    found = _lookup(places, name, model_file, runner_class, notes)
    if found is not None:
        runner, info, meta, folder = found
        return Prepared(runner, info, meta, backend, "int8", _int8_caution(meta, f"cached int8 model {_shown(folder)}"))
    converted, info, meta = _float32_openvino(source, model, meta, files, places, notes)
    try:
        spec = spec_from_info(info, meta)
    except InferenceError as exc:
        raise _int8_refused(f"cannot make calibration inputs for this model ({exc})") from None
    try:
        quantized, record, line = quantize_for_openvino(converted, spec, meta)
    except QuantizationError as exc:
        raise _int8_refused(str(exc)) from None

    def write(path):
        _openvino().save_model(quantized, str(path), compress_to_fp16=False)

    for place in places:
        try:
            folder = _write_entry(place, name, write, model_file, info, meta, {"quantization": record})
        except Exception as exc:  # noqa: BLE001  (read-only, full disk, the writer: next place)
            if _writable(place):
                notes.append(f"cannot cache in {_shown(place)} ({_first_line(exc)})")
            continue
        prune_stale(place, name, files, backend, "int8")
        notes.append(f"{line}, cached in {_shown(folder)}")
        return Prepared(runner_class(folder / model_file), info, meta, backend, "int8",
                        _int8_caution(meta, "; ".join(notes)))
    notes.append(line + ("" if files else ", not cached"))
    return Prepared(runner_class(quantized), info, meta, backend, "int8", _int8_caution(meta, "; ".join(notes)))


INT8_CHECKED = ("rrdb_generator",)  # architectures whose int8 accuracy was measured (rrdb_x4: -0.03 dB Set14)


def _int8_caution(meta: dict, description: str) -> str:
    """The backend line, with a caution for architectures whose int8 accuracy is unmeasured or poor."""
    architecture = (meta or {}).get("architecture")
    if architecture in INT8_CHECKED:
        return description
    return (f"{description}; caution: int8 accuracy is measured only for {', '.join(INT8_CHECKED)} "
            f"(srresnet x4 lost 3-4.6 dB), compare with --precision float32")
