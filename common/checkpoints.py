"""Exported models: `X.h5` (whole model), `X.weights.h5` (weights only) and `X.json` (metadata).

The JSON says how to rebuild the model and how to feed it:
{"architecture", "args", "scale", "upsampling", "color", "input_range", "output_range",
 "degradation", "training_data", "steps", "val_psnr", "created", "keras_version", "parameters"}.
Every file is written under a temporary name in the same folder and renamed into place, so a
failed or interrupted save never leaves a partial checkpoint behind.
"""
import common  # noqa: F401  (quiet TensorFlow import)

import contextlib
import datetime
import json
import logging
import math
import os
import re
import warnings
from pathlib import Path

import h5py
import keras
import numpy as np

import common.layers  # noqa: F401  (registers PixelShuffle/Rescale so .h5 files reload)
from common import registry
from common.files import json_text, temp_file_beside

WEIGHTS_SUFFIX = ".weights.h5"
# Bounds on a checkpoint's JSON, checked before and after parsing (it may come from anywhere):
MAX_META_BYTES = 1 << 20  # the shipped ones are under 2 KB
MAX_META_DEPTH = 32  # nesting of objects and arrays
SCALES = range(1, 9)  # x1 (identity tests) to x8
MAX_ARG_INT = 4096  # an integer architecture argument: filters, blocks, kernel sizes
MAX_ARG_FLOAT = 1e6
MAX_PARAMETERS = 10**10
MAX_NAME = 200  # characters of an architecture name or an argument's text value


class CheckpointError(Exception):
    """A checkpoint that is missing, unreadable or inconsistent; the message is one line."""


def checkpoint_paths(path) -> tuple[Path, Path, Path]:
    """(X.h5, X.weights.h5, X.json) for a path given as X, X.h5, X.weights.h5 or X.json."""
    path = Path(path)
    name = path.name
    for suffix in (WEIGHTS_SUFFIX, ".h5", ".json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    base = path.with_name(name)
    return (
        base.with_name(name + ".h5"),
        base.with_name(name + WEIGHTS_SUFFIX),
        base.with_name(name + ".json"),
    )


@contextlib.contextmanager
def _quiet_keras():
    """Hide Keras's "HDF5 is legacy" notice and h5 loading warnings."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        absl.setLevel(level)


def save_model(model, path, meta: dict) -> Path:
    """Write X.h5, X.weights.h5 and X.json atomically; returns the X.h5 path.

    `meta` gets "created" (if absent), "keras_version" and "parameters" added.
    """
    h5_path, weights_path, json_path = checkpoint_paths(path)
    h5_path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(meta)
    meta.setdefault("created", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    meta["keras_version"] = keras.__version__
    meta["parameters"] = int(model.count_params())
    text = json_text(meta)

    temps: list[str] = []
    try:
        tmp_h5 = temp_file_beside(h5_path, ".tmp.h5")
        temps.append(tmp_h5)
        with _quiet_keras():
            model.save(tmp_h5, overwrite=True)
        tmp_weights = temp_file_beside(weights_path, ".tmp" + WEIGHTS_SUFFIX)
        temps.append(tmp_weights)
        model.save_weights(tmp_weights, overwrite=True)
        tmp_json = temp_file_beside(json_path, ".tmp.json")
        temps.append(tmp_json)
        with open(tmp_json, "w", encoding="utf-8") as f:
            f.write(text)
        # All three are complete: rename them into place (JSON last, it describes the others).
        for tmp, final in zip(temps, (h5_path, weights_path, json_path)):
            os.replace(tmp, final)
    except BaseException:
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
    return h5_path


def read_meta(path, required: bool = True) -> dict:
    """The metadata JSON beside a checkpoint (X.json for X.h5 / X.weights.h5 / X), checked by
    validate_meta.

    A missing JSON raises CheckpointError when `required`, else gives {}; invalid JSON (or values)
    always raises, with one line naming the file and the field.
    """
    json_path = checkpoint_paths(path)[2]
    try:
        with open(json_path, "rb") as f:
            raw = f.read(MAX_META_BYTES + 1)  # never more: the file may be huge
    except FileNotFoundError:
        if required:
            raise CheckpointError(f"{json_path}: metadata file not found") from None
        return {}
    except OSError as exc:
        raise CheckpointError(f"{json_path}: cannot read metadata ({exc.strerror or exc})") from None
    if len(raw) > MAX_META_BYTES:
        raise CheckpointError(f"{json_path}: metadata is over {MAX_META_BYTES // 1024} KB (not a checkpoint's JSON)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{json_path}: cannot read metadata ({exc})") from None
    depth = _nesting(text)
    if depth > MAX_META_DEPTH:
        raise CheckpointError(f"{json_path}: metadata nested {depth} levels deep (at most {MAX_META_DEPTH})")
    try:
        meta = json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{json_path}: invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{json_path}: invalid JSON ({_first_line(exc)})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{json_path}: metadata must be a JSON object")
    try:
        validate_meta(meta)
    except ValueError as exc:
        raise CheckpointError(f"{json_path}: {exc}") from None
    return meta


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _nesting(text: str) -> int:
    """The deepest nesting of [ and { outside strings (a linear scan: json would recurse)."""
    depth = deepest = 0
    for ch in re.findall(r"[\[\]{}]", _STRING.sub("", text)):
        depth += 1 if ch in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 30:
        raise ValueError(f"integer of {len(text)} digits")
    return int(text)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _check_arg(name: str, value, where: str = "args") -> None:
    field = f'"{where}"."{name}"'
    if value is None or isinstance(value, bool):
        return
    if _is_int(value):
        if not -1 <= value <= MAX_ARG_INT:
            raise ValueError(f"{field} must be an integer from -1 to {MAX_ARG_INT}, not {value}")
    elif isinstance(value, float):
        if not (math.isfinite(value) and abs(value) <= MAX_ARG_FLOAT):
            raise ValueError(f"{field} must be a finite number of at most {MAX_ARG_FLOAT:g}, not {value}")
    elif isinstance(value, str):
        if len(value) > MAX_NAME:
            raise ValueError(f"{field} is {len(value)} characters long (at most {MAX_NAME})")
    elif isinstance(value, list):
        if len(value) > 64:
            raise ValueError(f"{field} has {len(value)} items (at most 64)")
        for item in value:
            if isinstance(item, (list, dict)):
                raise ValueError(f"{field} must hold plain values, not nested lists or objects")
            _check_arg(name, item, where)
    else:
        raise ValueError(f"{field} must be a number, text, true/false or a list of them, not an object")


def validate_meta(meta: dict) -> None:
    """Check the fields a checkpoint's JSON feeds into building and running the model (types and
    bounds); raise ValueError naming the field. Fields only for people (dates, notes) pass."""
    architecture = meta.get("architecture")
    if architecture is not None and not (isinstance(architecture, str) and 0 < len(architecture) <= MAX_NAME):
        raise ValueError(f'"architecture" must be a name, not {_short(architecture)}')
    args = meta.get("args")
    if args is not None:
        if not isinstance(args, dict):
            raise ValueError(f'"args" must be an object, not {_short(args)}')
        for name, value in args.items():
            _check_arg(name, value)
    for key in ("scale", "min_input_size", "steps", "parameters"):
        value = meta.get(key)
        if value is None:
            continue
        low, high = {"scale": (SCALES.start, SCALES.stop - 1), "min_input_size": (1, MAX_ARG_INT),
                     "steps": (0, 10**12), "parameters": (0, MAX_PARAMETERS)}[key]
        if not _is_int(value) or not low <= value <= high:
            raise ValueError(f'"{key}" must be an integer from {low:,} to {high:,}, not {_short(value)}')
    trained = meta.get("trained_scales")
    if trained is not None and not (isinstance(trained, list) and len(trained) <= 16
                                    and all(_is_int(s) and s in SCALES for s in trained)):
        raise ValueError(f'"trained_scales" must be a list of scales from 1 to 8, not {_short(trained)}')
    for key, allowed in (("upsampling", ("pre", "post")), ("color", ("rgb", "y"))):
        value = meta.get(key)
        if value is not None and value not in allowed:
            raise ValueError(f'"{key}" must be {" or ".join(map(repr, allowed))}, not {_short(value)}')
    for key in ("input_range", "output_range"):
        value = meta.get(key)
        if value is None:
            continue
        if not (isinstance(value, list) and len(value) == 2 and all(_is_number(v) and abs(v) <= 1e6 for v in value)
                and value[0] != value[1]):
            raise ValueError(f'"{key}" must be [low, high], two different finite numbers, not {_short(value)}')


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _check_hdf5(path: Path) -> None:
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (an interrupted download or copy?)")
    try:
        ok = h5py.is_hdf5(str(path))
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc})") from None
    if not ok:
        raise CheckpointError(f"{path}: not an HDF5 file (corrupt, or not a Keras checkpoint)")


def _stored_weight_shapes(path: Path) -> list[tuple]:
    shapes = []

    def visit(_, obj):
        if isinstance(obj, h5py.Dataset):
            shapes.append(tuple(obj.shape))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return shapes


def _parameters(shapes) -> int:
    return int(sum(np.prod(s, dtype=np.int64) for s in shapes))


def _resolve(path: Path) -> tuple[Path, str]:
    """The file to load and its kind ("model" or "weights")."""
    h5_path, weights_path, _ = checkpoint_paths(path)
    if path.name.endswith(WEIGHTS_SUFFIX):
        return weights_path, "weights"
    if path.name.endswith(".h5"):
        return h5_path, "model"
    if h5_path.exists():
        return h5_path, "model"
    if weights_path.exists():
        return weights_path, "weights"
    raise CheckpointError(f"{path}: checkpoint not found (no {h5_path.name} or {weights_path.name})")


def _build_from_meta(file: Path, meta: dict):
    json_path = checkpoint_paths(file)[2]
    architecture = meta.get("architecture")
    args = meta.get("args") or {}
    if not isinstance(architecture, str) or not isinstance(args, dict):
        raise CheckpointError(f"{json_path}: needs an \"architecture\" name and an \"args\" object")
    try:
        return registry.build(architecture, **args)
    except (registry.UnknownArchitecture, ImportError) as exc:
        raise CheckpointError(f"{json_path}: cannot build {architecture!r}: {_first_line(exc)}") from None
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{json_path}: cannot build {architecture!r} with args {args}: {_first_line(exc)}"
        ) from None


def _load_foreign(file: Path):
    """(model, meta) from a loader of foreign files (e.g. the thesis's Keras 2 SRCNN), or None."""
    for target in registry.foreign_loaders():
        try:
            return registry.load_function(target)(file)
        except (ImportError, ValueError):
            continue
    return None


def load_model(path, meta: dict | None = None):
    """Load a checkpoint given as X.h5, X.weights.h5 or X (prefers X.h5); returns (model, meta).

    X.weights.h5 is rebuilt from the JSON's architecture and args through common.registry.
    Also accepted: named weight sources such as "krasserm:srgan" (a chapter's `weight_sources`) and
    foreign files without a JSON that a chapter's loader recognises (the thesis's Keras 2 SRCNN).
    `meta` overrides the JSON beside the file. Models are loaded uncompiled.
    """
    source, _, name = str(path).partition(":")
    sources = registry.weight_sources() if name else {}
    if source in sources and not Path(path).exists():
        try:
            return registry.load_function(sources[source])(name)
        except (ImportError, ValueError, OSError) as exc:
            raise CheckpointError(f"{path}: {_first_line(exc)}") from None
    path = Path(path)
    file, kind = _resolve(path)
    _check_hdf5(file)
    if meta is None:
        meta = read_meta(file, required=(kind == "weights"))
        if kind == "model" and not meta:
            foreign = _load_foreign(file)
            if foreign is not None:
                return foreign

    if kind == "model":
        architecture = meta.get("architecture")
        if isinstance(architecture, str):
            registry.import_module_of(architecture)  # registers the chapter's custom layers
        try:
            with _quiet_keras():
                model = keras.models.load_model(file, compile=False)
        except Exception as exc:  # h5py/keras raise many types for bad files
            raise CheckpointError(f"{file}: cannot load the model ({_first_line(exc)})") from None
        expected = meta.get("parameters")
        if expected is not None and int(expected) != model.count_params():
            raise CheckpointError(
                f"checkpoint {file} holds a different architecture: {model.count_params():,} "
                f"parameters, but its metadata says {int(expected):,}"
            )
        return model, meta

    model = _build_from_meta(file, meta)
    try:
        stored = _stored_weight_shapes(file)
    except Exception as exc:
        raise CheckpointError(f"{file}: cannot read the weights ({_first_line(exc)})") from None
    wanted = [tuple(w.shape) for w in model.weights]
    if sorted(stored) != sorted(wanted):
        raise CheckpointError(
            f"checkpoint {file} holds a different architecture: {len(stored)} weight arrays "
            f"({_parameters(stored):,} parameters), but {meta['architecture']!r} with args "
            f"{meta.get('args') or {}} has {len(wanted)} ({_parameters(wanted):,})"
        )
    try:
        with _quiet_keras():
            model.load_weights(file)
    except ValueError as exc:
        raise CheckpointError(
            f"checkpoint {file} holds a different architecture: {_first_line(exc)}"
        ) from None
    except Exception as exc:
        raise CheckpointError(f"{file}: cannot load the weights ({_first_line(exc)})") from None
    return model, meta
