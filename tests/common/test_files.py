"""common.files: whole-file writes and the JSON writer."""
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from common.files import atomic_write_bytes, current_umask, write_json


def test_atomic_write_replaces_whole_files_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())  # not mkstemp's 0600
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "text, not bytes")  # fails while writing the temporary file
    assert target.read_bytes() == b"second"
    assert sorted(os.listdir(tmp_path)) == ["out.bin"]


def test_write_json_takes_path_then_data_and_numpy_paths_and_dataclasses(tmp_path):
    @dataclass
    class Point:
        x: int
        where: Path

    write_json(tmp_path / "a.json", {"psnr": np.float32(31.5), "shape": np.array([2, 3]), "p": Point(1, Path("d"))})
    text = (tmp_path / "a.json").read_text()
    assert text.endswith("}\n")
    assert json.loads(text) == {"psnr": 31.5, "shape": [2, 3], "p": {"x": 1, "where": "d"}}
    write_json(tmp_path / "b.json", Point(2, Path("e")))
    assert json.loads((tmp_path / "b.json").read_text()) == {"x": 2, "where": "e"}
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        write_json(tmp_path / "c.json", {"f": object()})
    assert not (tmp_path / "c.json").exists()
