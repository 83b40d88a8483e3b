"""Test set-up: an isolated Airflow home and data folder for the whole session.

The environment is fixed before anything imports Airflow, which reads it at import.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from environment import ROOT, VENV_BIN, isolated_environment

SESSION_DIR = Path(tempfile.mkdtemp(prefix="sluice-tests-"))
os.environ.update(isolated_environment(SESSION_DIR / "airflow", SESSION_DIR / "data"))
sys.path.insert(0, str(ROOT / "plugins"))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The session's Airflow home with a migrated metadata DB and the platform's pools."""
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run([VENV_BIN / "airflow", "db", "migrate"], check=True, capture_output=True)
    subprocess.run(
        [VENV_BIN / "airflow", "pools", "import", ROOT / "include" / "airflow" / "pools.json"],
        check=True,
        capture_output=True,
    )
    return home


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    return tmp_path / "lake"
