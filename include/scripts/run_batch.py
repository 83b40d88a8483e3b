"""Run one complete 6-hour batch through every platform DAG, then print a summary.

Each DAG runs with real Airflow task execution (``airflow dags test``) in dependency
order: every source's ingestion DAG, then the transform. Exits non-zero if any run
failed. Rerunning a batch replaces it, so running this twice gives the same tables.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sluice import config
from sluice.batch import batch_id, parse_utc
from sluice.report import batch_summary, format_summary
from sluice.sources import source_names

INTERVAL = timedelta(hours=6)


def latest_complete_interval(now: datetime) -> datetime:
    """Start of the newest 6-hour interval that has ended by ``now``."""
    floor = now.replace(minute=0, second=0, microsecond=0, hour=now.hour - now.hour % 6)
    return floor - INTERVAL


def parse_start(text: str) -> datetime:
    start = parse_utc(text)
    if start.hour % 6 or start.minute or start.second:
        raise SystemExit(f"--batch {text}: a batch starts at 00, 06, 12 or 18 h UTC")
    return start


def dag_run_state(dag_id: str, logical_date: datetime) -> str | None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = (
            session.query(DagRun)
            .filter(DagRun.dag_id == dag_id, DagRun.logical_date == logical_date)
            .order_by(DagRun.id.desc())
            .first()
        )
        return str(run.state) if run else None


def run_dag(dag_id: str, logical_date: datetime, log_dir: Path) -> bool:
    log_path = log_dir / f"{dag_id}.log"
    started = time.monotonic()
    print(f"  {dag_id:<24}", end="", flush=True)
    with log_path.open("w") as log:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "dags", "test", dag_id, logical_date.isoformat()],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ,
        )
    state = dag_run_state(dag_id, logical_date)
    ok = proc.returncode == 0 and state == "success"
    print(f"{state or 'not run'} in {time.monotonic() - started:.1f} s" + ("" if ok else f"  (log: {log_path})"))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", help="interval start in UTC, e.g. 2026-11-20T06:00 (default: latest complete)")
    args = parser.parse_args()
    start = parse_start(args.batch) if args.batch else latest_complete_interval(datetime.now(UTC))
    end = start + INTERVAL
    batch = batch_id(start)
    dag_ids = [f"ingest_{name}" for name in source_names()] + ["transform"]
    log_dir = Path(os.environ["AIRFLOW_HOME"]) / "run-logs" / batch
    log_dir.mkdir(parents=True, exist_ok=True)

    print(f"Sluice batch {batch}: [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC")
    # A manual run at logical date T covers the interval ending at T.
    for dag_id in dag_ids:
        if not run_dag(dag_id, end, log_dir):
            print(f"\nBatch {batch} FAILED in {dag_id}.")
            return 1
    print()
    print(format_summary(batch_summary(batch)))
    print(f"\nLake:      {config.lake_root()}")
    print(f"Warehouse: {config.warehouse_path()}  (DuckDB; schemas bronze, silver, gold, marts)")
    print(f"Logs:      {log_dir}")
    print("UI:        make up, then open http://localhost:8080")
    return 0


if __name__ == "__main__":
    sys.exit(main())
