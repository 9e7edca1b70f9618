"""Writing files whole: a temporary file beside the target, then a rename, so a reader (or a run
killed midway) never sees a partial file; and the project's one JSON writer."""
import json
import os
import tempfile
from dataclasses import asdict, is_dataclass
from pathlib import Path

import numpy as np


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_file_beside(final, suffix: str = ".tmp") -> str:
    """A new empty file `.NAME.<random><suffix>` in `final`'s folder (the same file system, so it
    can be renamed onto `final`), with the permissions a plain new file would get."""
    final = Path(final)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix, dir=final.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600 files
    return tmp


def atomic_write_bytes(path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: no partial file is ever left."""
    tmp = temp_file_beside(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def json_default(value):
    """json.dumps(default=...): NumPy scalars and arrays as numbers and lists, paths as strings,
    dataclasses as dicts."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"value {value!r} is not JSON-serialisable")


def json_text(data) -> str:
    """`data` as indented JSON text with a final newline (see json_default)."""
    return json.dumps(data, indent=2, default=json_default) + "\n"


def write_json(path, data) -> None:
    """Write `data` (see json_text) to `path` atomically."""
    atomic_write_bytes(path, json_text(data).encode())
