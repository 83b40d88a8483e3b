"""Backfill DAGs over [START, END) and wait until every run has finished.

Without ``--dag``, every platform DAG: each source's ingestion, then the transform.
Airflow 3: one ``airflow backfill create`` per DAG queues the runs and a scheduler runs
them all at once, so a source's next interval lands while the transform builds the
previous one (each DAG still takes its own intervals in order). When no scheduler is
alive (no ``make up``), a temporary scheduler (creating no scheduled runs of its own),
API server (tasks report through its execution API) and triggerer (where the model tasks
report the build) are started, the API server on a free port, and stopped afterwards.
Airflow 2.11: ``airflow dags backfill`` runs each DAG's intervals in-process, one DAG
after the other. Either way, the runs' states are reported and the
exit status is non-zero unless all succeeded.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import airflow

from sluice.core.batch import parse_utc
from sluice.dag_builder import platform_dag_ids

AIRFLOW_3 = int(airflow.__version__.split(".")[0]) >= 3
AIRFLOW = str(Path(sys.executable).parent / "airflow")
# executors start `airflow tasks run` from PATH: it must be this environment's
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
TERMINAL = {"success", "failed"}
# Airflow 2.11's LocalExecutor workers dispose the metadata-DB pool they inherit when
# forked, closing connections the backfill job may have just checked out ("server closed
# the connection unexpectedly"). Without a pool no idle connection is inherited.
AIRFLOW2_ENVIRONMENT = {"AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_ENABLED": "False"}
T = TypeVar("T")


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


#: the user a backfill of this script is triggered by
TRIGGERED_BY = "make backfill"


def retry_locked(action: Callable[[], T], attempts: int = 10) -> T:
    """Run a metadata-DB action, retrying SQLite's "database is locked" while a scheduler writes."""
    from sqlalchemy.exc import OperationalError

    for attempt in range(attempts):
        try:
            return action()
        except OperationalError as exc:
            if "database is locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def scheduler_alive() -> bool:
    """Whether a scheduler (``make up``'s) heartbeats in this Airflow home."""
    from airflow.jobs.job import Job
    from airflow.utils.session import create_session
    from airflow.utils.state import JobState
    from sqlalchemy import select

    query = select(Job).where(Job.job_type == "SchedulerJob", Job.state == JobState.RUNNING)
    with create_session() as session:
        return any(job.is_alive() for job in session.scalars(query))


def serialize_dags() -> None:
    """Parse the DAG folder and write the DAGs to the metadata DB (``airflow dags reserialize``)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    with create_session() as session:
        manager = DagBundlesManager()
        manager.sync_bundles_to_db(session=session)
        session.commit()
        for bundle in manager.get_all_dag_bundles():
            bundle.initialize()
            bag = BundleDagBag(bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
            if bag.import_errors:
                raise SystemExit(f"DAG import errors: {bag.import_errors}")
            sync_bag_to_db(bag, bundle.name, bundle_version=bundle.get_current_version(), session=session)


def set_paused(dag_id: str, paused: bool) -> bool:
    """Pause or unpause ``dag_id``; returns whether it was paused before."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        model = DagModel.get_dagmodel(dag_id, session=session)
        if model is None:
            raise SystemExit(f"no DAG {dag_id!r} in the DAG folder")
        was_paused = bool(model.is_paused)
        model.is_paused = paused
        return was_paused


def create_backfill(dag_id: str, start: datetime, end: datetime) -> None:
    """``airflow backfill create`` of [start, end), rerunning intervals that already ran.

    Airflow commits the backfill before its runs: when SQLite's lock stops the runs, the
    backfill is left open unless Airflow's own clean-up got the lock, and a retry would find
    "another backfill running". So the attempt's backfill is removed here before the retry.
    """
    from airflow.models.backfill import ReprocessBehavior, _create_backfill
    from sqlalchemy.exc import OperationalError

    to_date = end - timedelta(seconds=1)
    try:
        _create_backfill(
            dag_id=dag_id,
            from_date=start,
            to_date=to_date,
            max_active_runs=1,
            reverse=False,
            dag_run_conf=None,
            triggering_user_name=TRIGGERED_BY,
            reprocess_behavior=ReprocessBehavior.COMPLETED,
        )
    except OperationalError as exc:
        if "database is locked" in str(exc):
            retry_locked(lambda: remove_open_backfill(dag_id, start, to_date))
        raise


def remove_open_backfill(dag_id: str, from_date: datetime, to_date: datetime) -> None:
    """Delete the open backfill this script started for exactly [from_date, to_date], with its runs."""
    from airflow.models.backfill import Backfill, BackfillDagRun
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    with create_session() as session:
        query = select(Backfill).where(
            Backfill.dag_id == dag_id,
            Backfill.completed_at.is_(None),
            Backfill.triggering_user_name == TRIGGERED_BY,
            Backfill.from_date == from_date,
            Backfill.to_date == to_date,
        )
        for backfill in session.scalars(query).all():
            session.execute(delete(BackfillDagRun).where(BackfillDagRun.backfill_id == backfill.id))
            session.execute(delete(DagRun).where(DagRun.backfill_id == backfill.id))
            session.delete(backfill)


def settle_backfills(dag_ids: list[str]) -> list[str]:
    """Mark the finished backfills of ``dag_ids`` completed; describe those still running.

    The scheduler marks a backfill completed every 30 s, once none of its runs is queued
    or running; a temporary scheduler is stopped as soon as the runs end, often before,
    and Airflow refuses a new backfill of a DAG while one is not completed.
    """
    from airflow.models.backfill import Backfill
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    running = []
    with create_session() as session:
        open_backfills = select(Backfill).where(Backfill.dag_id.in_(dag_ids), Backfill.completed_at.is_(None))
        for backfill in session.scalars(open_backfills):
            unfinished = session.scalar(
                select(DagRun.id).where(
                    DagRun.backfill_id == backfill.id,
                    DagRun.state.in_((DagRunState.QUEUED, DagRunState.RUNNING)),
                )
            )
            if unfinished is None:
                backfill.completed_at = datetime.now(UTC)
            else:
                running.append(f"{backfill.dag_id} (backfill {backfill.id})")
    return running


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stack_environment() -> tuple[dict[str, str], int]:
    """The environment of a scheduler that only runs backfills, the API server its tasks
    report to, and the triggerer the transform's waits and model tasks run in; the port."""
    port = free_port()
    return {
        **os.environ,
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        # the API server's first answers, while its siblings start on the same cores, can
        # take longer than the 5 s a task waits by default: the task then fails, and retries
        # a minute later
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
    }, port


def start_airflow(command: list[str], env: dict[str, str], log_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [AIRFLOW, *command],
        stdout=(log_dir / f"backfill-{command[0]}.log").open("w"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def stop_if_one_exited(started: list[subprocess.Popen]) -> None:
    """Stop the backfill if one of the processes it started has exited."""
    for proc in started:
        if proc.poll() is not None:
            raise SystemExit(f"{' '.join(proc.args[1:2])} exited with {proc.returncode}")


def wait_until_serving(url: str, started: list[subprocess.Popen], timeout: float = 180) -> None:
    """Wait for the API server to answer: a task started before it listens fails its attempt
    ("connection refused") and retries minutes later."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        stop_if_one_exited(started)
        if time.monotonic() > deadline:
            raise SystemExit(f"the API server did not answer {url} within {timeout:.0f} s")
        time.sleep(0.5)


def stop(started: list[subprocess.Popen]) -> None:
    """Ask every process to stop at once (each takes seconds to shut down), then wait for them."""
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for proc in started:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def backfill_airflow3(
    dag_ids: list[str], start: datetime, end: datetime, timeout: float
) -> dict[str, list[tuple[str, str]]]:
    # Prepared in this process: each `airflow` command would pay Airflow's start-up again.
    started: list[subprocess.Popen] = []
    stack = None
    log_dir = Path(os.environ["AIRFLOW_HOME"])
    if not scheduler_alive():
        print(f"starting a scheduler, API server and triggerer for the backfill (logs: {log_dir}/backfill-*.log)")
        stack = env, port = stack_environment()
        # first, so that their start-up overlaps the preparation
        started = [
            start_airflow(["api-server", "--port", str(port)], env, log_dir),
            start_airflow(["triggerer"], env, log_dir),
        ]
    paused: list[str] = []
    try:
        still_running = retry_locked(lambda: settle_backfills(dag_ids))
        if still_running:
            raise SystemExit(
                f"a backfill is still running for {', '.join(still_running)}: let a scheduler finish it "
                "(make up) or cancel it on the DAG's page in the UI"
            )
        retry_locked(serialize_dags)
        for dag_id in dag_ids:
            if retry_locked(lambda dag_id=dag_id: set_paused(dag_id, False)):  # a paused DAG's backfill never starts
                paused.append(dag_id)
            retry_locked(lambda dag_id=dag_id: create_backfill(dag_id, start, end))
        if stack:
            # the scheduler last, once the backfills exist: it is SQLite's busiest writer (an
            # attempt to create a backfill that its lock stopped leaves the backfill open),
            # and a task it starts before the API server answers fails its attempt
            env, port = stack
            wait_until_serving(f"http://localhost:{port}/execution/health", started)
            started.append(start_airflow(["scheduler"], env, log_dir))
        deadline = time.monotonic() + timeout
        while True:
            runs = {dag_id: backfill_runs(dag_id, start, end) for dag_id in dag_ids}
            if all(r and all(state in TERMINAL for _, state in r) for r in runs.values()):
                retry_locked(lambda: settle_backfills(dag_ids))
                return runs
            if time.monotonic() > deadline:
                raise SystemExit(f"backfill not finished after {timeout:.0f} s: {runs}")
            stop_if_one_exited(started)
            time.sleep(2)
    finally:
        for dag_id in paused:
            retry_locked(lambda dag_id=dag_id: set_paused(dag_id, True))
        stop(started)


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
        env={**os.environ, **AIRFLOW2_ENVIRONMENT},
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
    dag_ids = args.dag or platform_dag_ids()
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
