"""The package layers hold (import-linter, as `make lint` runs it), and breaking them fails the lint."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(plugins: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), str(ROOT / ".importlinter"), "--no-cache"],
        env={**os.environ, "PYTHONPATH": str(plugins)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layers_hold():
    result = lint(ROOT / "plugins")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


@pytest.fixture
def copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "plugins" / "sluice", tmp_path / "sluice", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_an_import_pointing_up_fails(copy_of_the_package: Path):
    bronze = copy_of_the_package / "sluice" / "lake" / "bronze.py"
    bronze.write_text(bronze.read_text() + "\n\ndef _late():\n    from sluice.erasure.run import process_request\n")
    result = lint(copy_of_the_package)
    assert result.returncode == 1
    assert "sluice.lake is not allowed to import sluice.erasure" in result.stdout
    assert "sluice.lake.bronze -> sluice.erasure.run" in result.stdout


def test_a_cycle_inside_a_package_fails(copy_of_the_package: Path):
    storage = copy_of_the_package / "sluice" / "lake" / "storage.py"
    storage.write_text(storage.read_text() + "\n\ndef _late():\n    from sluice.lake.bronze import register_files\n")
    result = lint(copy_of_the_package)
    assert result.returncode == 1
    assert "No cycles are allowed in sluice.lake" in result.stdout


def test_a_new_package_must_be_placed_in_a_layer(copy_of_the_package: Path):
    (copy_of_the_package / "sluice" / "misc").mkdir()
    (copy_of_the_package / "sluice" / "misc" / "__init__.py").write_text("")
    result = lint(copy_of_the_package)
    assert result.returncode == 1
    assert "sluice.misc" in result.stdout
