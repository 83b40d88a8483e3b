"""``make backfill`` on Airflow 3 (include/scripts/backfill.py) against the session's metadata DB."""

from __future__ import annotations

import importlib.util
import sqlite3
from datetime import UTC, datetime

from environment import ROOT

START, END = datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC)


def backfill_script():
    spec = importlib.util.spec_from_file_location("backfill_script", ROOT / "include" / "scripts" / "backfill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_backfill_left_open_by_a_locked_attempt_is_removed_before_the_retry(airflow_db, monkeypatch):
    """Airflow commits a backfill before its runs; SQLite's lock stopping the runs left it
    open, and the retry failed with "another backfill is running" for the script's own."""
    from airflow.models import backfill as models
    from airflow.utils.session import create_session
    from sqlalchemy import func, select
    from sqlalchemy.exc import OperationalError

    script = backfill_script()
    dag_id = "probe_locked_backfill"
    attempts = []

    def open_backfills(session) -> int:
        query = select(func.count()).where(models.Backfill.dag_id == dag_id, models.Backfill.completed_at.is_(None))
        return session.scalar(query)

    def create(**arguments):  # Airflow's order: refuse a second open backfill, commit it, then the runs
        with create_session() as session:
            if open_backfills(session):
                raise models.AlreadyRunningBackfill(f"Another backfill is running for Dag {dag_id}.")
            backfill = models.Backfill(
                dag_id=dag_id,
                from_date=arguments["from_date"],
                to_date=arguments["to_date"],
                max_active_runs=1,
                dag_run_conf={},
                triggering_user_name=arguments["triggering_user_name"],
            )
            session.add(backfill)
        attempts.append(arguments)
        if len(attempts) == 1:
            raise OperationalError("INSERT INTO dag_run", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(models, "_create_backfill", create)
    script.retry_locked(lambda: script.create_backfill(dag_id, START, END))
    assert len(attempts) == 2
    with create_session() as session:
        assert open_backfills(session) == 1
        session.execute(models.delete(models.Backfill).where(models.Backfill.dag_id == dag_id))
