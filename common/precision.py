"""Compute precision for inference: float32, or bfloat16 where the hardware runs it natively.

bfloat16 keeps float32's exponent range with an 8-bit mantissa. CPUs with AVX512-BF16 or AMX
(and GPUs of compute capability 8.0 or newer) run bfloat16 convolutions about twice as fast as
float32; elsewhere they are emulated and no faster. `cast_model` rebuilds a model with Keras'
"mixed_bfloat16" policy: weights stay float32 (so checkpoints are unchanged), each layer casts
them and its input to bfloat16 and computes in bfloat16. A few layers stay float32
(`float32_layers`): the first and last layers with weights and normalisation, so neither the
input image nor the output image is rounded to bfloat16's 8-bit mantissa.

int8 runs on OpenVINO only: common.quantize makes an int8 copy of the converted model by NNCF
post-training quantization, calibrated on training patches (common.backends caches it beside the
float32 conversion). CPUs with VNNI (avx512_vnni, avx_vnni, amx_int8) multiply int8 natively; others
emulate it with 16-bit multiplies, still usually faster than float32. `auto` never picks int8: it
has not met the accuracy bar (<= 0.05 dB PSNR, 99.9 % of pixels within 3/255 of float32) for the
shipped models (benchmarks.bench_precision --int8 measures it).
"""
import copy
from pathlib import Path

PRECISIONS = ("float32", "bfloat16", "int8", "auto")
INT8_CPU_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # int8 dot products in one instruction
PRECISION_HELP = ("compute precision: bfloat16 is about twice as fast on CPUs with AVX512-BF16/AMX and on recent "
                  "GPUs, emulated (slow) elsewhere; int8 runs on OpenVINO only, quantized once with NNCF on "
                  "training patches and cached beside the float32 conversion (less accurate: see the docs); "
                  "auto picks bfloat16 where native, else float32, never int8 (default float32)")
CPUINFO = Path("/proc/cpuinfo")
NATIVE_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
MIN_GPU_CAPABILITY = (8, 0)  # Ampere and newer
POLICY = "mixed_bfloat16"
NORMALISATION = ("BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization")


def cpu_flags(path=None) -> set[str]:
    """The instruction-set flags of the CPU (Linux /proc/cpuinfo); empty if unreadable."""
    try:
        text = Path(path or CPUINFO).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def gpu_capabilities() -> list[tuple[int, int]]:
    """Compute capability of every visible GPU, e.g. [(8, 6)]."""
    import tensorflow as tf

    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        except (ValueError, RuntimeError):
            capability = None
        if capability:
            found.append(tuple(int(v) for v in capability))
    return found


def _native_support() -> str | None:
    """What runs bfloat16 natively here, in words, or None."""
    gpus = [c for c in gpu_capabilities() if c >= MIN_GPU_CAPABILITY]
    if gpus:
        return f"a GPU of compute capability {gpus[0][0]}.{gpus[0][1]}"
    flags = sorted(cpu_flags() & set(NATIVE_CPU_FLAGS))
    if flags:
        return f"the CPU has {'/'.join(flags)}"
    return None


def native_bfloat16() -> bool:
    """True if the CPU has AVX512-BF16/AMX-BF16 or a GPU has compute capability >= 8.0."""
    return _native_support() is not None


def int8_support() -> str:
    """How this CPU multiplies int8, in words (for the precision line and the benchmarks)."""
    flags = sorted(cpu_flags() & set(INT8_CPU_FLAGS))
    if flags:
        return f"VNNI: the CPU has {'/'.join(flags)}"
    if "avx512bw" in cpu_flags() or "avx2" in cpu_flags():
        return "no VNNI on the CPU: int8 is multiplied with 16-bit instructions"
    return "no VNNI or AVX2 on the CPU"


def resolve_precision(name: str) -> tuple[str, str]:
    """("float32" | "bfloat16" | "int8", one line saying which precision is used and why)."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; choose from {', '.join(PRECISIONS)}")
    if name == "float32":
        return "float32", "precision: float32"
    if name == "int8":
        return "int8", f"precision: int8 (OpenVINO, NNCF post-training quantization; {int8_support()})"
    support = _native_support()
    if name == "bfloat16":
        how = f"native: {support}" if support else (
            "no native bfloat16 here, so it is emulated and likely slower than float32")
        return "bfloat16", f"precision: bfloat16 ({how})"
    if support:
        return "bfloat16", f"precision: bfloat16 (auto: {support})"
    return "float32", (f"precision: float32 (auto: no {'/'.join(NATIVE_CPU_FLAGS)} on the CPU "
                       f"and no GPU of compute capability >= {MIN_GPU_CAPABILITY[0]}.{MIN_GPU_CAPABILITY[1]})")


# --- rebuilding a model in bfloat16 -------------------------------------------------------------


def _all_layers(model) -> list:
    import keras

    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_all_layers(layer))
    return found


def _parents(layer) -> set[str]:
    """Names of the layers whose outputs feed `layer` (any of its calls)."""
    names = set()
    for node in getattr(layer, "_inbound_nodes", []):
        for tensor in node.input_tensors:
            names.add(tensor._keras_history[0].name)
    return names


def float32_layers(model) -> list[str]:
    """Names of the layers kept in float32 by default.

    * the first layer with weights on every path from an input (and weightless layers before it):
      rounding the image and a wide first kernel to bfloat16 costs the most PSNR (SRGAN's 9x9 head
      conv alone: 0.03 dB on Set5) for under 1 % of a generator's work;
    * the last layer with weights before every output (and weightless layers after it), so the
      image is computed in float32 from bfloat16 features;
    * normalisation layers (BatchNormalization etc.), which are cheap and sensitive to rounding.
    """
    import keras

    layers = _all_layers(model)
    keep = [layer.name for layer in layers if type(layer).__name__ in NORMALISATION]
    front = {t._keras_history[0].name for t in model.inputs}  # reach the inputs through weightless layers
    for layer in model.layers:
        if layer.name not in front and _parents(layer) & front:
            keep.append(layer.name)
            if not layer.weights:
                front.add(layer.name)
    by_name = {layer.name: layer for layer in model.layers}
    todo = [t._keras_history[0].name for t in model.outputs]
    while todo:  # back from the outputs through weightless layers
        name = todo.pop()
        layer = by_name.get(name)
        if layer is None or isinstance(layer, keras.layers.InputLayer) or name in keep:
            continue
        keep.append(name)
        if not layer.weights:
            todo.extend(_parents(layer))
    return [layer.name for layer in layers if layer.name in keep]  # in the model's order


def _set_policies(config: dict, keep: set[str], seen: set[str], force: bool = False) -> None:
    for entry in config.get("layers", []):
        name = entry.get("name") or entry["config"].get("name")
        seen.add(name)
        if entry["class_name"] == "InputLayer":
            continue
        kept = force or name in keep
        entry["config"]["dtype"] = "float32" if kept else POLICY
        if isinstance(entry["config"].get("layers"), list):  # a nested model: all of it if kept
            _set_policies(entry["config"], keep, seen, kept)


def _custom_objects(model) -> dict:
    import keras

    objects = {}
    for layer in _all_layers(model) + [model]:
        cls = type(layer)
        objects[cls.__name__] = cls
        objects[keras.saving.get_registered_name(cls)] = cls
    return objects


def cast_model(model, precision: str = "bfloat16", keep_float32=None):
    """The model rebuilt to compute in `precision`, sharing no variables with the original.

    "float32" returns the model itself. "bfloat16" gives every layer the "mixed_bfloat16" policy
    except the layers named in `keep_float32` (default: `float32_layers(model)`); the weights are
    copied (float32) and the outputs are float32. Needs a functional or Sequential model.
    """
    import keras

    if precision == "float32":
        return model
    if precision != "bfloat16":
        raise ValueError(f"cannot cast a model to {precision!r}; choose float32 or bfloat16")
    keep = set(float32_layers(model) if keep_float32 is None else keep_float32)
    try:
        config = copy.deepcopy(model.get_config())
    except NotImplementedError:
        config = None
    if not isinstance(config, dict) or "layers" not in config:
        raise ValueError(f"cast_model needs a functional or Sequential model, not {type(model).__name__}")
    seen: set[str] = set()
    _set_policies(config, keep, seen)
    if keep - seen:
        raise ValueError(f"no layers named {', '.join(sorted(keep - seen))} in {model.name}")
    rebuilt = type(model).from_config(config, custom_objects=_custom_objects(model))
    rebuilt.set_weights(model.get_weights())
    if all(t.dtype == "float32" for t in rebuilt.outputs):
        return rebuilt
    outputs = [keras.layers.Activation("linear", dtype="float32", name=f"float32_output_{i}")(t)
               for i, t in enumerate(rebuilt.outputs)]
    inputs = rebuilt.inputs[0] if len(rebuilt.inputs) == 1 else rebuilt.inputs
    return keras.Model(inputs, outputs[0] if len(outputs) == 1 else outputs, name=rebuilt.name)
