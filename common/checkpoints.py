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
import os
import warnings
from pathlib import Path

import h5py
import keras
import numpy as np

import common.layers  # noqa: F401  (registers PixelShuffle/Rescale so .h5 files reload)
from common import registry
from common.files import json_text, temp_file_beside

WEIGHTS_SUFFIX = ".weights.h5"


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
    """The metadata JSON beside a checkpoint (X.json for X.h5 / X.weights.h5 / X).

    A missing JSON raises CheckpointError when `required`, else gives {}; invalid JSON always raises.
    """
    json_path = checkpoint_paths(path)[2]
    try:
        text = json_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise CheckpointError(f"{json_path}: metadata file not found") from None
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{json_path}: cannot read metadata ({exc})") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{json_path}: invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{json_path}: metadata must be a JSON object")
    return meta


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
