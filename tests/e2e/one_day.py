"""One day of the platform (four 6-hour batches) run one batch at a time, as ``make run``
runs a batch: made once per test run and shared by the tests that compare other ways of
running the day with it (:mod:`e2e.test_slice`, :mod:`e2e.test_backfills`)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from company_exports import drop_exports
from e2e.snapshot import differences, pinned_environment, snapshot
from environment import ROOT, VENV_BIN, isolated_environment
from made_once import made_once
from sluice.lake.storage import open_lake

BATCH_STARTS = ["2026-11-20T00:00", "2026-11-20T06:00", "2026-11-20T12:00", "2026-11-20T18:00"]
BATCH_IDS = ["20261120T000000Z", "20261120T060000Z", "20261120T120000Z", "20261120T180000Z"]


def run_ok(command: list, env: dict[str, str], timeout: float) -> str:
    """Run a command from the project folder; its stdout, once it exited 0."""
    proc = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


def run_batch_command(start: str, *args: str) -> list:
    return [VENV_BIN / "python", ROOT / "include" / "scripts" / "run_batch.py", "--batch", start, *args]


def run_batch(env: dict[str, str], start: str, *args: str) -> str:
    return run_ok(run_batch_command(start, *args), env, 900)


def backfill(env: dict[str, str], start: str, end: str) -> str:
    """``make backfill`` of every platform DAG; its report, once every run succeeded."""
    output = run_ok(["make", "--no-print-directory", "backfill", f"START={start}", f"END={end}"], env, 1500)
    assert "on Airflow 3.3" in output and "all runs succeeded" in output
    return output


def assert_same(expected: dict, actual: dict) -> None:
    """The same lake and warehouse (:mod:`e2e.snapshot`); else each difference on its own line."""
    found = differences(expected, actual)
    assert not found, "the lake or the warehouse differs:\n" + "\n".join(found)


RUN_COLUMNS = ("logical_date", "data_interval_start", "data_interval_end", "run_type", "start_date", "end_date")


def metadata(airflow_home: Path, sql: str, params: list) -> list[tuple]:
    """Rows of a query on the Airflow home's metadata database."""
    con = sqlite3.connect(airflow_home / "airflow.db")
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def dag_runs(airflow_home: Path, dag_id: str) -> list[dict]:
    query = f"SELECT {', '.join(RUN_COLUMNS)} FROM dag_run WHERE dag_id = ? ORDER BY logical_date"
    runs = [dict(zip(RUN_COLUMNS, row, strict=True)) for row in metadata(airflow_home, query, [dag_id])]
    for run in runs:
        for column in RUN_COLUMNS:
            if column.endswith("date") or column.startswith("data_interval"):
                run[column] = datetime.fromisoformat(run[column]).replace(tzinfo=UTC)
    return runs


def task_states(airflow_home: Path, dag_id: str, logical_date: str) -> dict[str, str]:
    query = (
        "SELECT ti.task_id, ti.state FROM task_instance ti JOIN dag_run dr"
        " ON ti.dag_id = dr.dag_id AND ti.run_id = dr.run_id"
        " WHERE dr.dag_id = ? AND dr.logical_date LIKE ?"
    )
    return dict(metadata(airflow_home, query, [dag_id, f"{logical_date.replace('T', ' ')}%"]))


def assert_transform_built(airflow_home: Path, start: str) -> None:
    """The interval's transform ran its dbt build and every model and test task succeeded
    (a rerun whose build was skipped would leave the tables as they were and pass unseen)."""
    states = task_states(airflow_home, "transform", start)
    assert len([task for task in states if task.startswith("dbt.")]) > 20
    assert {task: state for task, state in states.items() if state != "success"} == {}


def assert_one_honest_run_per_interval(airflow_home: Path, starts: list[str]) -> None:
    """Each DAG has one run per interval: logical date = interval start, 6 hours of data,
    and a duration measured in minutes, not the hours between the interval and now."""
    for dag_id in ("ingest_company", "ingest_faker", "transform"):
        runs = dag_runs(airflow_home, dag_id)
        assert [run["logical_date"] for run in runs] == [datetime.fromisoformat(s + "+00:00") for s in starts]
        for run in runs:
            assert run["data_interval_start"] == run["logical_date"]
            assert run["data_interval_end"] - run["data_interval_start"] == timedelta(hours=6)
            assert timedelta(0) < run["end_date"] - run["start_date"] < timedelta(minutes=15), (dag_id, run)


DAY = "one-by-one"


def one_by_one() -> dict[str, Any]:
    """The day run batch by batch, in order, with the sample company's exports of the four
    batches in the inbox before the first: its environment, data folder, each batch's
    output and the snapshot of its lake and warehouse. Made once per test run, by
    :func:`start_in_background` when collection found a test that needs it."""
    return made_once(DAY, _build_day)


def _build_day(folder: Path) -> dict[str, Any]:
    data = folder / "data"
    env = pinned_environment(isolated_environment(folder / "airflow", data))
    run_ok([VENV_BIN / "airflow", "db", "migrate"], env, 300)
    run_ok([VENV_BIN / "airflow", "pools", "import", ROOT / "include" / "airflow" / "pools.json"], env, 120)
    drop_exports(open_lake(str(data / "lake")), BATCH_STARTS)
    outputs = [run_batch(env, start) for start in BATCH_STARTS]
    # as the day ended, for tests that change a copy of it while others rerun parts of it
    shutil.copytree(data, folder / "as-run" / "data")
    shutil.copytree(folder / "airflow", folder / "as-run" / "airflow", ignore=shutil.ignore_patterns("airflow.cfg"))
    return {"env": env, "data": data, "outputs": outputs, "snapshot": snapshot(data), "as_run": folder / "as-run"}


def copy_of_the_day(folder: Path) -> dict[str, str]:
    """The day as it ended (its lake, warehouse and metadata database) copied into ``folder``;
    the environment of Airflow processes working on the copy."""
    day = one_by_one()
    shutil.copytree(day["as_run"], folder, dirs_exist_ok=True)
    return pinned_environment(isolated_environment(folder / "airflow", folder / "data"))


def start_in_background(run_dir: Path) -> subprocess.Popen:
    """Start making the day in a process of its own, so it overlaps the tests that run before
    the first one that needs it (which then waits for it, or makes it if this failed)."""
    tests = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": f"{tests}:{ROOT / 'plugins'}"}
    with (run_dir / f"{DAY}.log").open("w") as log:
        return subprocess.Popen(
            [VENV_BIN / "python", "-c", "from e2e.one_day import one_by_one; one_by_one()"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
