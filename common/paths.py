"""Where things are: the repository, the shared data beside it, run folders."""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SR_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"


def resolve_data(name_or_path) -> Path:
    """A folder path as given, or a data set name under ../shared/data (Set5, T91, ...)."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    if (DATA / str(name_or_path)).is_dir():
        return DATA / str(name_or_path)
    raise FileNotFoundError(f"{name_or_path}: no such folder (nor under {DATA})")
