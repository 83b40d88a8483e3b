"""Expensive test fixtures made once per test run and shared by every pytest-xdist worker."""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any


def made_once(name: str, build: Callable[[Path], Any]) -> Any:
    """``build(folder)``'s result: made by the first process of the run that asks, in a new
    folder ``<run folder>/<name>``, and loaded by every later one. The others wait meanwhile; a
    build that failed is tried again by the next process that asks (and fails it too)."""
    run_dir = Path(os.environ["SLUICE_TESTS_RUN_DIR"])  # conftest's RUN_DIR: every worker's
    folder, kept = run_dir / name, run_dir / f"{name}.pickle"
    with (run_dir / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not kept.exists():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
                result = build(folder)
                kept.with_suffix(".part").write_bytes(pickle.dumps(result))
                kept.with_suffix(".part").rename(kept)
            return pickle.loads(kept.read_bytes())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
