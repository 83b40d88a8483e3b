"""The platform end to end against the bare work it orchestrates.

Each benchmark gets a fresh Airflow home and data folder (``isolated_env``), runs ``make
setup`` there first (virtualenvs, connectors, manifest, metadata DB: one-time work, not
timed), then times a ``make`` command from the project folder and the bare work of the
same intervals (see bare.py) right after it, on the data the platform loaded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bare import INTERVAL, bare_work, intervals
from common import ROOT, VENV_PYTHON, BenchmarkError, checked_run, isolated_env, log_tail, timed_run

from sluice.core.batch import parse_utc

MAKE = ["make", "--no-print-directory"]
TASKS_CHILD = Path(__file__).with_name("task_instances_child.py")
#: The batch of ``make run`` and the first interval of the one-day backfill.
DAY_START = "2026-11-20T00:00"
#: The first interval of the longer backfill that ``backfill_30d_seconds`` is scaled from.
LONG_BACKFILL_START = "2026-10-01T00:00"
#: Prefix of the transform's dbt tasks (the Cosmos task group).
DBT_TASK_PREFIX = "dbt."


class Platform:
    """A fresh Airflow home and data folder in a temporary folder, set up by ``make setup``.

    The folder is removed once a benchmark has its figures; when one fails, it stays
    with its logs (named in the error).
    """

    def __init__(self, name: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=f"sluice-bench-{name}-"))
        self.env = isolated_env(self.folder / "airflow", self.folder / "data")
        self.logs = self.folder / "logs"
        self.setup_seconds = checked_run([*MAKE, "setup"], self.env, self.logs / "setup.log", timeout=1800)

    @property
    def warehouse(self) -> Path:
        return Path(self.env["SLUICE_WAREHOUSE_PATH"])

    def log(self, *args: str) -> Path:
        """``logs/make-run-BATCH=2026-11-20T00-00.log`` for ``make run BATCH=2026-11-20T00:00``."""
        return self.logs / ("make-" + "-".join(args).replace(":", "-").replace("/", "-") + ".log")

    def make(self, *args: str, timeout: float) -> float:
        return checked_run([*MAKE, *args], self.env, self.log(*args), timeout=timeout)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def dbt_task_times(env: dict[str, str]) -> dict[str, Any]:
    """The dbt part of the latest transform run, from Airflow's metadata DB.

    Read by Airflow itself in a subprocess with the run's environment, so any metadata
    database works. The span runs from the earliest start to the latest end of the
    run's task instances whose id starts with ``dbt.``.
    """
    proc = subprocess.run(
        [str(VENV_PYTHON), str(TASKS_CHILD), "transform"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        raise BenchmarkError(f"reading the transform's task instances failed: {proc.stderr[-2000:]}")
    run = json.loads(proc.stdout.strip().splitlines()[-1])
    tasks = [t for t in run["tasks"] if t["task_id"].startswith(DBT_TASK_PREFIX)]
    timed = [t for t in tasks if t["start_date"] and t["end_date"]]
    if not timed:
        raise BenchmarkError(f"transform run {run['run_id']} has no finished dbt task: {run['tasks']}")
    start = min(t["start_date"] for t in timed)
    end = max(t["end_date"] for t in timed)
    return {
        "run_id": run["run_id"],
        "seconds": _seconds_between(start, end),
        "task_count": len(tasks),
        "task_seconds": {
            t["task_id"]: round(_seconds_between(t["start_date"], t["end_date"]), 3)
            for t in sorted(timed, key=lambda t: t["start_date"])
        },
        "states": sorted({t["state"] for t in tasks}),
        "transform_run_seconds": (
            _seconds_between(run["start_date"], run["end_date"]) if run["start_date"] and run["end_date"] else None
        ),
    }


_batch_outcome: dict[str, Any] = {}


def bench_batch() -> dict[str, Any]:
    """``make run`` of one batch against its bare work; the dbt part of its transform.

    Shared by the ``batch`` and ``cosmos`` benchmarks: the batch runs once per process
    (a failure too is kept, not run again).
    """
    if "error" in _batch_outcome:
        raise _batch_outcome["error"]
    if "figures" not in _batch_outcome:
        try:
            _batch_outcome["figures"] = _measure_batch()
        except Exception as exc:
            _batch_outcome["error"] = exc
            raise
    return _batch_outcome["figures"]


def _measure_batch() -> dict[str, Any]:
    platform = Platform("batch")
    run_seconds = platform.make("run", f"BATCH={DAY_START}", timeout=900)
    batches = intervals(parse_utc(DAY_START), 1)
    bare = bare_work(batches, platform.warehouse, platform.folder / "bare")
    dbt = dbt_task_times(platform.env)
    platform.remove()
    return {
        "batch_overhead_ratio": run_seconds / bare["seconds"],
        "batch_run_seconds": run_seconds,
        "batch_setup_seconds": platform.setup_seconds,
        "batch_id": batches[0][0],
        "bare_batch_seconds": bare["seconds"],
        "bare_batch_read_seconds": bare["read_seconds"],
        "bare_batch_dbt_build_seconds": bare["dbt_build_seconds"],
        "bare_batch_bronze_rows": bare["bronze_rows"],
        "bare_faker_count": bare["faker_count"],
        "cosmos_vs_dbt_build_ratio": dbt["seconds"] / bare["dbt_build_seconds"],
        "cosmos_dbt_seconds": dbt["seconds"],
        "cosmos_dbt_task_count": dbt["task_count"],
        "cosmos_dbt_task_seconds": dbt["task_seconds"],
        "cosmos_dbt_task_seconds_sum": sum(dbt["task_seconds"].values()),
        "cosmos_dbt_task_states": dbt["states"],
        "cosmos_transform_run_seconds": dbt["transform_run_seconds"],
    }


def make_backfill(platform: Platform, start: datetime, end: datetime, timeout: float) -> float:
    """Wall seconds of ``make backfill START=.. END=..`` of every platform DAG."""
    window = [f"START={start:%Y-%m-%dT%H:%M}", f"END={end:%Y-%m-%dT%H:%M}"]
    log = platform.log("backfill", *window)
    seconds, returncode = timed_run([*MAKE, "backfill", *window], platform.env, log, timeout=timeout)
    if returncode != 0:
        raise BenchmarkError(f"make backfill exited with {returncode}; log {log}:\n{log_tail(log)}")
    return seconds


def _backfill_timeout(interval_count: int) -> float:
    return max(1800.0, interval_count * 600.0)


def bench_backfill(interval_count: int = 4, start: str = DAY_START) -> dict[str, Any]:
    """``make backfill`` of ``interval_count`` intervals against their bare work."""
    first = parse_utc(start)
    end = first + interval_count * INTERVAL
    platform = Platform("backfill")
    backfill_seconds = make_backfill(platform, first, end, _backfill_timeout(interval_count))
    bare = bare_work(intervals(first, interval_count), platform.warehouse, platform.folder / "bare")
    platform.remove()
    return {
        "backfill_overhead_ratio": backfill_seconds / bare["seconds"],
        "backfill_seconds": backfill_seconds,
        "backfill_window": f"[{first:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC",
        "backfill_intervals": interval_count,
        "backfill_setup_seconds": platform.setup_seconds,
        "bare_day_seconds": bare["seconds"],
        "bare_day_read_seconds": bare["read_seconds"],
        "bare_day_dbt_build_seconds": bare["dbt_build_seconds"],
        "bare_day_per_interval": bare["per_interval"],
    }


def bench_backfill_30d(days: float = 7, start: str = LONG_BACKFILL_START) -> dict[str, Any]:
    """``make backfill`` (every DAG) of ``days`` days, scaled to 30 days."""
    interval_count = round(days * timedelta(days=1) / INTERVAL)
    if interval_count < 1 or abs(interval_count * INTERVAL - days * timedelta(days=1)) > timedelta(seconds=1):
        raise BenchmarkError(f"--backfill-days {days}: must be a whole number of 6-hour intervals")
    first = parse_utc(start)
    end = first + interval_count * INTERVAL
    platform = Platform("backfill-long")
    backfill_seconds = make_backfill(platform, first, end, _backfill_timeout(interval_count))
    platform.remove()
    seconds = backfill_seconds
    return {
        "backfill_30d_seconds": seconds * 30 / days,
        "backfill_30d_method": (
            f"make backfill of every platform DAG over {days:g} day(s) "
            f"[{first:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC ({interval_count} interval(s)): "
            f"{seconds:.1f} s, x 30/{days:g}"
        ),
        "backfill_30d_measured_seconds": seconds,
        "backfill_30d_measured_days": days,
        "backfill_30d_seconds_per_interval": seconds / interval_count,
    }
