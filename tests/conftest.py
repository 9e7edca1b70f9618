import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import common  # noqa: E402,F401  (quiet TensorFlow import)
from common.paths import DATA  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long checks (CI runs them in a bounded form)")
    config.addinivalue_line("markers", "shared: needs ../shared/data beside the checkout")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (DATA / "Set5").is_dir():
        pytest.fail(f"shared data not found at {DATA}")
    return DATA
