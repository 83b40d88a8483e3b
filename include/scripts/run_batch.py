"""Run one complete 6-hour batch through every platform DAG, then print a summary.

Every DAG runs in this one process, in dependency order (every source's ingestion DAG,
then the transform), with Airflow's own in-process task execution (what ``airflow dags
test`` uses): one Airflow start-up for the whole batch instead of one per DAG. Each run
gets the identity the scheduler would give it: logical date = interval start, the
interval as its data interval, started now. A DAG that already has a run for the
interval (scheduled, backfilled or an earlier ``make run``) has that run cleared and run
again, so the UI keeps one history per interval. Exits non-zero if any run failed.
Rerunning a batch replaces it: running this twice gives the same tables.

When the sample company (``include/sources/company.yml``) is declared, its exports for the
batch are dropped into the lake's inbox first, as its teams would drop them, unless they
are there already (``include/sample_company``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sluice.core import config
from sluice.core.batch import batch_id, parse_utc
from sluice.dag_builder import platform_dag_ids, run_in_process

INTERVAL = timedelta(hours=6)
INCLUDE = Path(__file__).resolve().parents[1]
#: the source whose inbox the sample company's generator fills
SAMPLE_SOURCE = "company"


def latest_complete_interval(now: datetime) -> datetime:
    """Start of the newest 6-hour interval that has ended by ``now``."""
    floor = now.replace(minute=0, second=0, microsecond=0, hour=now.hour - now.hour % 6)
    return floor - INTERVAL


def parse_start(text: str) -> datetime:
    try:
        start = parse_utc(text)
    except ValueError:
        raise SystemExit(f"--batch {text}: not a date or time; write it as 2026-11-20T06:00 (UTC)") from None
    if start.hour % 6 or start.minute or start.second:
        raise SystemExit(f"--batch {text}: a batch starts at 00, 06, 12 or 18 h UTC")
    return start


@contextlib.contextmanager
def scheduler_identity(start: datetime, end: datetime) -> Iterator[None]:
    """Make ``DAG.test`` run the interval [start, end) as the scheduler would.

    ``DAG.test`` deletes any run at the logical date and creates a manual one that
    covers the interval *ending* at it and "started" at it. Instead, keep an existing
    run of the interval (its task instances were just cleared) or create a manual run
    with logical date ``start``, data interval [start, end) and start date now.
    """
    from airflow.models import dagrun
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    original = dagrun.get_or_create_dagrun

    def get_or_create(*, dag, session, conf, **_: object):
        now = datetime.now(UTC)
        run = session.scalar(
            dagrun.select(dagrun.DagRun).where(dagrun.DagRun.dag_id == dag.dag_id, dagrun.DagRun.logical_date == start)
        )
        if run is not None and (run.data_interval_start, run.data_interval_end) == (start, end):
            run.dag = dag
            run.state, run.start_date, run.end_date = DagRunState.RUNNING, now, None
            session.commit()
            return run
        if run is not None:  # a run at this date covering another interval is not this batch's
            session.delete(run)
            session.commit()
        return dag.create_dagrun(
            run_id=dagrun.DagRun.generate_run_id(run_type=DagRunType.MANUAL, logical_date=start, run_after=end),
            logical_date=start,
            data_interval=(start, end),
            run_after=end,
            conf=conf,
            run_type=DagRunType.MANUAL,
            state=DagRunState.RUNNING,
            triggered_by=DagRunTriggeredByType.CLI,
            triggering_user_name="make run",
            start_date=now,
            session=session,
        )

    dagrun.get_or_create_dagrun = get_or_create
    try:
        yield
    finally:
        dagrun.get_or_create_dagrun = original


@contextlib.contextmanager
def output_to(log_path: Path) -> Iterator[object]:
    """Send everything written to stdout and stderr (Airflow's, dbt's, the connector's) to
    ``log_path``; yields a stream to the original stdout for progress lines."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(1), "w", buffering=1)
    with log_path.open("w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield console
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            console.close()


def drop_sample_exports(start: datetime) -> str | None:
    """The sample company's exports of the batch, written into the lake's inbox (and their
    truth beside it) unless they are there; what was done, or None without the source."""
    from sluice.core.sources import source_names
    from sluice.lake.storage import open_lake

    if SAMPLE_SOURCE not in source_names():
        return None
    sys.path.append(str(INCLUDE))
    from sample_company import generate

    batch = generate.drop_batch(open_lake(config.lake_root()), start.replace(tzinfo=None))
    if batch is None:
        return "already in the inbox"
    return f"{sum(f['rows'] for f in batch['files'].values())} rows in {len(batch['files'])} files"


def run_dags(dag_ids: list[str], start: datetime, log_path: Path) -> bool:
    """Run each DAG for the interval starting at ``start``, stopping at the first failure."""
    end = start + INTERVAL
    with output_to(log_path) as console:
        from airflow.dag_processing.dagbag import BundleDagBag

        folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
        bag = BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder")
        if bag.import_errors:
            print(f"  DAG import errors (log: {log_path}):", file=console)
            for path, error in bag.import_errors.items():
                print(f"    {path}: {error.strip().splitlines()[-1]}", file=console)
            return False
        for dag_id in dag_ids:
            started = time.monotonic()
            print(f"  {dag_id:<24}", end="", file=console)
            with scheduler_identity(start, end):
                run = run_in_process(bag.dags[dag_id], start, end)
            state = str(run.state)
            ok = state == "success"
            took = f"{state} in {time.monotonic() - started:.1f} s"
            print(took + ("" if ok else f"  (log: {log_path})"), file=console)
            if not ok:
                return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", help="interval start in UTC, e.g. 2026-11-20T06:00 (default: latest complete)")
    parser.add_argument("--dag", action="append", help="run only this DAG (repeatable; default: every platform DAG)")
    args = parser.parse_args()
    start = parse_start(args.batch) if args.batch else latest_complete_interval(datetime.now(UTC))
    end = start + INTERVAL
    batch = batch_id(start)
    known = platform_dag_ids()
    if unknown := sorted(set(args.dag or []) - set(known)):
        raise SystemExit(f"--dag {', '.join(unknown)}: not a platform DAG; one of {', '.join(known)}")
    dag_ids = args.dag or known
    log_dir = Path(os.environ["AIRFLOW_HOME"]) / "run-logs" / batch
    log_dir.mkdir(parents=True, exist_ok=True)

    print(f"Sluice batch {batch}: [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC")
    if dropped := drop_sample_exports(start):
        print(f"  {'sample exports':<24}{dropped}  (lake inbox/{SAMPLE_SOURCE}/)")
    if not run_dags(dag_ids, start, log_dir / "run.log"):
        print(f"\nBatch {batch} FAILED.")
        return 1
    from sluice.report import batch_summary, format_summary

    print()
    print(format_summary(batch_summary(batch)))
    print(f"\nLake:      {config.lake_root()}")
    if config.warehouse() == "snowflake":
        where = f"Snowflake, Airflow connection {config.snowflake_conn_id()}"
        print(f"Warehouse: {where} (schemas bronze, silver, gold, marts)")
    else:
        print(f"Warehouse: {config.warehouse_path()}  (DuckDB; schemas bronze, silver, gold, marts)")
    print(f"Logs:      {log_dir}")
    print("UI:        make up, then open http://localhost:8080")
    return 0


if __name__ == "__main__":
    sys.exit(main())
