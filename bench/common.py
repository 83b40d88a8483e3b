"""Shared helpers of the benchmarks: paths, the make environment, statistics, timed
commands and the faker source's bare connector read."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluice.core.sources import SourceConfig

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
MB = 1024 * 1024
#: The interval that benchmarks run when they need one: the first of 2026-11-20.
BATCH = "20261120T000000Z"


class BenchmarkError(RuntimeError):
    """A benchmark could not measure what it set out to measure."""


def _environment_module() -> ModuleType:
    """tests/environment.py, the one description of the environment make exports."""
    path = ROOT / "tests" / "environment.py"
    spec = importlib.util.spec_from_file_location("sluice_test_environment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_env() -> dict[str, str]:
    """This process's environment plus the variables of include/airflow/env.mk."""
    return {**os.environ, **_environment_module().make_environment()}


def isolated_env(airflow_home: Path, data_dir: Path) -> dict[str, str]:
    """The make environment with its own Airflow home and data folder."""
    return _environment_module().isolated_environment(airflow_home, data_dir)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def cpu_busy_percent(seconds: float = 2) -> float:
    """Share of all CPUs in use over the next ``seconds`` (others' work skews timings)."""
    import psutil

    return psutil.cpu_percent(interval=seconds)


def machine_info() -> dict[str, Any]:
    """Where and with what the figures were measured."""
    try:
        airflow_version = version("apache-airflow")
    except PackageNotFoundError:
        airflow_version = None
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "memory_total_mb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / MB),
        "platform": platform.platform(),
        "python_version": platform.python_version(),
        "python_executable": sys.executable,
        "airflow_version": airflow_version,
        "git_commit": commit or None,
    }


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file, to explain a failure."""
    text = path.read_text(errors="replace") if path.is_file() else ""
    return "\n".join(text.splitlines()[-lines:])


def timed_run(
    command: Sequence[str | Path],
    env: dict[str, str],
    log: Path,
    cwd: Path = ROOT,
    timeout: float | None = None,
) -> tuple[float, int]:
    """Wall seconds and exit status of ``command``; its stdout and stderr go to ``log``.

    It runs in its own process group: on a timeout or an interrupt the whole group gets
    SIGTERM (so scripts that started servers can stop them), then SIGKILL.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [str(part) for part in command],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=timeout)
        except BaseException:
            _stop_group(proc)
            raise
    return time.perf_counter() - start, returncode


def _stop_group(proc: subprocess.Popen, grace: float = 60) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def checked_run(command: Sequence[str | Path], env: dict[str, str], log: Path, **options: Any) -> float:
    """:func:`timed_run` (same options), but a non-zero exit status is a :class:`BenchmarkError`."""
    seconds, returncode = timed_run(command, env, log, **options)
    if returncode != 0:
        name = " ".join(str(part) for part in command[:3])
        raise BenchmarkError(f"{name} ... exited with {returncode}; log {log}:\n{log_tail(log)}")
    return seconds


def faker_source(count: int | None = None) -> SourceConfig:
    """The declared faker source; with ``count``, that many users (and about as many purchases)."""
    from sluice.core.sources import load_source

    source = load_source("faker")
    if count is None:
        return source
    return dataclasses.replace(source, connector_config={**source.connector_config, "count": count})


def write_read_inputs(source: SourceConfig, folder: Path) -> tuple[Path, Path]:
    """Config and configured catalog files, built the way sync_batch builds them."""
    from sluice.ingest.local.protocol import configured_catalog, connector_executable, discover

    executable = connector_executable(source.connector)
    catalog = configured_catalog(
        discover(executable, source.connector_config),
        {stream.name: stream.cursor_field for stream in source.streams},
    )
    folder.mkdir(parents=True, exist_ok=True)
    config_path, catalog_path = folder / "config.json", folder / "catalog.json"
    config_path.write_text(json.dumps(source.connector_config))
    catalog_path.write_text(json.dumps(catalog))
    return config_path, catalog_path


def time_raw_read(executable: Path, config: Path, catalog: Path) -> float:
    """Wall seconds of ``<connector> read --config C --catalog K > /dev/null``."""
    start = time.perf_counter()
    proc = subprocess.run(
        [str(executable), "read", "--config", str(config), "--catalog", str(catalog)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace")[-2000:]
        raise BenchmarkError(f"raw connector read failed ({proc.returncode}): {tail}")
    return seconds
