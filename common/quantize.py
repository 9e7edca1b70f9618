"""int8 inference: NNCF post-training quantization of a converted OpenVINO model.

`quantize_openvino(ov_model, info, meta)` gives an int8 copy of a float32 OpenVINO model (the one
common.backends converts), calibrated on `CALIBRATION_PATCHES` LR patches of the training folders
(`CALIBRATION_FOLDERS`, ../shared/data/T91 and BSD200) made by the model's own degradation (its
metadata's "degradation", bicubic when it names none), fed exactly as inference feeds a tile
(common.tiling.run_tiles: colour mode, bicubic pre-upsampling, input range, padding). Never a test
set: calibration and any tuning use training patches only.

What is quantized (RECIPE): every convolution's weights (int8, symmetric, per output channel) and
its input (int8, per tensor; asymmetric after LeakyReLU/PReLU: NNCF's "mixed" preset; the range
from the extremes over all patches, not their mean: a rare saturated patch is not clipped). Residual
additions are left in float32 (`IGNORED_TYPES`): quantizing the residual stream of RRDB/SRResNet
cost rrdb_x4 0.74 dB on training patches by itself, and those adds are cheap; so are the first
convolution (reads the image) and the last (writes it): recipe 2, which quantized them, cost
srresnet_x4 2.7 dB on Set14. common.backends caches
the result beside the float32 conversion; the cache entry records RECIPE and the calibration.
"""
import contextlib
import io
import logging
import sys
import time

import numpy as np

CALIBRATION_FOLDERS = ("T91", "BSD200")
CALIBRATION_PATCHES = 200  # LR patches
CALIBRATION_LR_PATCH = 48  # LR side; the HR crop is this times the scale
CALIBRATION_SEED = 0
IGNORED_TYPES = ("Add",)  # kept in float32: the residual stream
KEEP_IMAGE_CONVOLUTIONS = True  # the first and the last convolution stay float32
RECIPE = 3  # bumped when what is quantized or how changes (part of the cache entry's name)


class QuantizationError(RuntimeError):
    """NNCF is missing or failed (one line)."""


def nncf_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nncf")
    except PackageNotFoundError:
        return "?"


def _import_nncf():
    sys.modules.setdefault("openvino_telemetry", None)  # NNCF's telemetry then stays a no-op stub
    try:
        import nncf
    except ImportError:
        raise QuantizationError("NNCF is not installed (pip install nncf)") from None
    nncf.set_log_level(logging.ERROR)
    return nncf


def degradation_name(meta: dict) -> tuple[str, list[str]]:
    """(name, options) of the degradation a checkpoint's metadata names ("bicubic" when none)."""
    text = str((meta or {}).get("degradation") or "bicubic").split()
    return text[0], text[1:]


class _Captured(Exception):
    pass


def model_input(lr: np.ndarray, spec) -> np.ndarray:
    """The model's input for an (N, h, w, 3) LR batch in [0, 1]: what run_tiles would feed it."""
    from common.tiling import run_tiles

    def capture(x):
        raise _Captured(np.array(x, np.float32))

    try:
        run_tiles(lr, capture, spec)
    except _Captured as captured:
        return captured.args[0]
    raise AssertionError("run_tiles did not call the model")


def calibration_inputs(spec, meta: dict, count: int | None = None, lr_patch: int | None = None,
                       folders=None, seed: int | None = None) -> tuple[list[np.ndarray], str]:
    """(model inputs of `count` training LR patches, one batch each; a description of them).

    The patches are random crops (fixed seed, no flips) of the training folders, degraded by the
    model's own degradation, one per image until the folders are used up, then a second, ..."""
    import warnings

    from common.data import train_dataset
    from common.degradations import make_degradation
    from common.paths import resolve_data

    count = int(count or CALIBRATION_PATCHES)
    lr_patch = int(lr_patch or CALIBRATION_LR_PATCH)
    folders = list(folders or CALIBRATION_FOLDERS)
    name, options = degradation_name(meta)
    try:
        degradation = make_degradation(name, options)
        used = " ".join([name, *options])
    except (ValueError, KeyError, TypeError):
        degradation, used = make_degradation("bicubic"), f"bicubic (the metadata's {name!r} is unknown here)"
    paths = [resolve_data(f) for f in folders]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # images smaller than the crop are skipped
        ds = train_dataset(paths, spec.scale, hr_patch=lr_patch * spec.scale, batch_size=1, degradation=degradation,
                           augment=False, seed=CALIBRATION_SEED if seed is None else seed, repeat=True, cache=True)
        inputs = [model_input(lr.numpy(), spec) for lr, _ in ds.take(count)]
    names = "+".join(p.name for p in paths)
    return inputs, f"{count} {lr_patch}x{lr_patch} LR patches of {names} ({used} degradation)"


def image_convolutions(ov_model) -> list[str]:
    """Names of the convolution that first reads the input image and the one that computes the
    output image (walking from the Parameter and back from the Result through other operations)."""
    found = []
    todo = [t.get_node() for t in ov_model.get_parameters()[0].output(0).get_target_inputs()]
    seen = set()
    while todo:  # breadth first: the nearest convolution
        node = todo.pop(0)
        if node.get_friendly_name() in seen:
            continue
        seen.add(node.get_friendly_name())
        if node.get_type_name() == "Convolution":
            found.append(node.get_friendly_name())
            break
        todo += [t.get_node() for out in node.outputs() for t in out.get_target_inputs()]
    node = ov_model.get_results()[0].input_value(0).get_node()
    while node.get_type_name() not in ("Convolution", "Parameter") and node.get_input_size():
        node = node.input_value(0).get_node()
    if node.get_type_name() == "Convolution" and node.get_friendly_name() not in found:
        found.append(node.get_friendly_name())
    return found


def ignored_scope(ov_model, nncf):
    """Kept in float32: the residual additions (IGNORED_TYPES) and the two convolutions that touch
    the image (KEEP_IMAGE_CONVOLUTIONS)."""
    types = sorted({op.get_type_name() for op in ov_model.get_ordered_ops()} & set(IGNORED_TYPES))
    names = image_convolutions(ov_model) if KEEP_IMAGE_CONVOLUTIONS else []
    if not types and not names:
        return None
    return nncf.IgnoredScope(types=types, names=names, validate=False)


def _advanced(nncf):
    """Activation ranges from the smallest minimum and largest maximum over all calibration patches
    (NNCF's default averages the per-patch extremes, which clipped saturated text in Set14's ppt3
    by 2.5 dB in rrdb_x4: recipe 1)."""
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    return AdvancedQuantizationParameters(activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)


def quantize_openvino(ov_model, inputs) -> "object":
    """An int8 copy of the float32 OpenVINO model `ov_model`, calibrated on `inputs` (model inputs,
    one NHWC batch each). NNCF's own messages and progress bars are kept off the terminal."""
    nncf = _import_nncf()
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            return nncf.quantize(ov_model.clone(), nncf.Dataset(list(inputs)), subset_size=len(inputs),
                                 preset=nncf.QuantizationPreset.MIXED, ignored_scope=ignored_scope(ov_model, nncf),
                                 advanced_parameters=_advanced(nncf))
    except Exception as exc:  # noqa: BLE001  (NNCF raises many kinds)
        text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise QuantizationError(f"NNCF could not quantize the model ({text})") from None


def quantize_for_openvino(ov_model, spec, meta: dict) -> tuple[object, dict, str]:
    """(int8 OpenVINO model, what to record in the cache entry, one line with the time it took)."""
    start = time.perf_counter()
    inputs, described = calibration_inputs(spec, meta)
    quantized = quantize_openvino(ov_model, inputs)
    seconds = time.perf_counter() - start
    record = {"nncf": nncf_version(), "recipe": RECIPE, "calibration": described, "ignored_types": list(IGNORED_TYPES),
              "float32_convolutions": image_convolutions(ov_model) if KEEP_IMAGE_CONVOLUTIONS else [],
              "seconds": round(seconds, 1)}
    return quantized, record, f"quantized to int8 with NNCF {nncf_version()} in {seconds:.1f} s on {described}"
