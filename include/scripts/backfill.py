"""Backfill DAGs over [START, END) and wait until every run has finished.

Without ``--dag``, every platform DAG: each source's ingestion, then the transform.
Airflow 3: one ``airflow backfill create`` per DAG queues the runs and a scheduler runs
them all at once, so a source's next interval lands while the transform builds the
previous one (each DAG still takes its own intervals in order). When no scheduler is
alive (no ``make up``), a temporary scheduler (creating no scheduled runs of its own)
and API server (tasks report through its execution API) are started on a free port, and
stopped afterwards. Airflow 2.11: ``airflow dags backfill`` runs each DAG's intervals
in-process, one DAG after the other. Either way, the runs' states are reported and the
exit status is non-zero unless all succeeded.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import airflow

from sluice.batch import parse_utc

AIRFLOW_3 = int(airflow.__version__.split(".")[0]) >= 3
AIRFLOW = str(Path(sys.executable).parent / "airflow")
# executors start `airflow tasks run` from PATH: it must be this environment's
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
TERMINAL = {"success", "failed"}


def airflow_cli(*args: str, check: bool = True, retries: int = 5) -> subprocess.CompletedProcess:
    """Run the Airflow CLI, retrying SQLite's "database is locked" while a scheduler writes."""
    for attempt in range(retries):
        proc = subprocess.run([AIRFLOW, *args], capture_output=True, text=True)
        if proc.returncode == 0 or "database is locked" not in proc.stderr + proc.stdout:
            break
        time.sleep(1 + attempt)
    if check and proc.returncode != 0:
        raise SystemExit(f"airflow {' '.join(args)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc


def backfill_runs(dag_id: str, start: datetime, end: datetime) -> list[tuple[str, str]]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    date_column = DagRun.logical_date if AIRFLOW_3 else DagRun.execution_date
    with create_session() as session:
        runs = (
            session.query(DagRun)
            .filter(DagRun.dag_id == dag_id, date_column >= start, date_column < end)
            .filter(DagRun.run_type == "backfill")
            .order_by(date_column)
            .all()
        )
        return [((run.logical_date if AIRFLOW_3 else run.execution_date).isoformat(), str(run.state)) for run in runs]


def scheduler_alive() -> bool:
    proc = airflow_cli("jobs", "check", "--job-type", "SchedulerJob", "--allow-multiple", "--limit", "10", check=False)
    return proc.returncode == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_airflow(log_dir: Path) -> list[subprocess.Popen]:
    """A scheduler that only runs backfills, and the API server its tasks report to."""
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
    }
    return [
        subprocess.Popen(
            [AIRFLOW, *command],
            stdout=(log_dir / f"backfill-{command[0]}.log").open("w"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        for command in (["api-server", "--port", str(port)], ["scheduler"])
    ]


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def platform_dags() -> list[str]:
    """Every platform DAG, in the order their intervals depend on each other."""
    from sluice.sources import source_names

    return [f"ingest_{name}" for name in source_names()] + ["transform"]


def is_paused(dag_id: str) -> bool:
    return "True" in airflow_cli("dags", "details", dag_id, "-o", "plain").stdout.split("is_paused")[-1][:40]


def backfill_airflow3(
    dag_ids: list[str], start: datetime, end: datetime, timeout: float
) -> dict[str, list[tuple[str, str]]]:
    airflow_cli("dags", "reserialize")
    paused = [dag_id for dag_id in dag_ids if is_paused(dag_id)]
    started: list[subprocess.Popen] = []
    if not scheduler_alive():
        log_dir = Path(os.environ["AIRFLOW_HOME"])
        print(f"starting a scheduler and API server for the backfill (logs: {log_dir}/backfill-*.log)")
        started = start_airflow(log_dir)
    try:
        for dag_id in dag_ids:
            airflow_cli("dags", "unpause", dag_id)  # a paused DAG's backfill never starts
            airflow_cli(
                "backfill",
                "create",
                "--dag-id",
                dag_id,
                "--from-date",
                start.isoformat(),
                "--to-date",
                (end - timedelta(seconds=1)).isoformat(),
                "--max-active-runs",
                "1",
                "--reprocess-behavior",
                "completed",
            )
        deadline = time.monotonic() + timeout
        while True:
            runs = {dag_id: backfill_runs(dag_id, start, end) for dag_id in dag_ids}
            if all(r and all(state in TERMINAL for _, state in r) for r in runs.values()):
                return runs
            if time.monotonic() > deadline:
                raise SystemExit(f"backfill not finished after {timeout:.0f} s: {runs}")
            for proc in started:
                if proc.poll() is not None:
                    raise SystemExit(f"{' '.join(proc.args[1:2])} exited with {proc.returncode}")
            time.sleep(2)
    finally:
        for dag_id in paused:
            airflow_cli("dags", "pause", dag_id, check=False)
        for proc in started:
            stop(proc)


def backfill_airflow2(dag_id: str, start: datetime, end: datetime) -> list[tuple[str, str]]:
    proc = subprocess.run(
        [
            AIRFLOW,
            "dags",
            "backfill",
            "--reset-dagruns",
            "-y",
            "-s",
            start.isoformat(),
            "-e",
            (end - timedelta(seconds=1)).isoformat(),
            dag_id,
        ],
    )
    runs = backfill_runs(dag_id, start, end)
    if proc.returncode != 0 and not runs:
        raise SystemExit(f"airflow dags backfill exited with {proc.returncode}")
    return runs


def main() -> int:
    # on SIGTERM, unwind through the finally blocks that stop what was started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dag", action="append", help="DAG to backfill (repeatable; default: every platform DAG)")
    parser.add_argument("--start", required=True, type=parse_utc, help="first interval start (inclusive)")
    parser.add_argument("--end", required=True, type=parse_utc, help="end of the last interval (exclusive)")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    if args.end <= args.start:
        raise SystemExit("--end must be after --start")
    dag_ids = args.dag or platform_dags()
    started = time.monotonic()
    if AIRFLOW_3:
        runs = backfill_airflow3(dag_ids, args.start, args.end, args.timeout)
    else:
        runs = {dag_id: backfill_airflow2(dag_id, args.start, args.end) for dag_id in dag_ids}
    print(
        f"\nBackfill of {', '.join(dag_ids)} [{args.start:%Y-%m-%d %H:%M}, {args.end:%Y-%m-%d %H:%M}) UTC "
        f"on Airflow {airflow.__version__}, {time.monotonic() - started:.1f} s:"
    )
    ok = True
    for dag_id, dag_runs in runs.items():
        print(f"  {dag_id}")
        for logical_date, state in dag_runs:
            print(f"    {logical_date}  {state}")
        ok = ok and bool(dag_runs) and all(state == "success" for _, state in dag_runs)
    print("all runs succeeded" if ok else "SOME RUNS DID NOT SUCCEED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
