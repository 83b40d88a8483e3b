"""Print, as JSON, the critical path of every run of the platform DAGs in Airflow's metadata DB.

Usage: ``critical_path_child.py [<dag_id> ...]`` (default: every platform DAG), with the
environment (AIRFLOW_HOME, database settings) of the Airflow home to read.

A run's critical path is walked back from its task that ended last: each step goes to the
upstream task that ended last, the one the task waited for. Each hop gets its ``wait``
(from that upstream's end, or the run's start, to the task's start: scheduling and task
start-up) and its ``run`` (start to end). A sensor's ``run`` includes what it waited for.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def upstream_ids(dag_ids: list[str]) -> dict[str, dict[str, list[str]]]:
    """Per DAG, per task: its upstream task ids, from the DAG folder."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2.11
        from airflow.models.dagbag import DagBag

    from sluice.core import config

    bag = DagBag(dag_folder=str(config.PROJECT_ROOT / "dags"))
    return {dag_id: {t.task_id: sorted(t.upstream_task_ids) for t in bag.get_dag(dag_id).tasks} for dag_id in dag_ids}


def critical_path(run: Any, tis: list[Any], upstream: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The hops of ``run``'s critical path, first to last."""
    done = {ti.task_id: ti for ti in tis if ti.start_date and ti.end_date and ti.map_index in (-1, 0)}
    if not done:
        return []
    hops = []
    task = max(done.values(), key=lambda ti: ti.end_date)
    while task is not None:
        before = [done[t] for t in upstream.get(task.task_id, []) if t in done]
        previous = max(before, key=lambda ti: ti.end_date) if before else None
        ready = previous.end_date if previous else run.start_date
        hops.append(
            {
                "task_id": task.task_id,
                "state": str(task.state),
                "wait": _seconds(ready, task.start_date),
                "run": _seconds(task.start_date, task.end_date),
            }
        )
        task = previous
    return hops[::-1]


def main(dag_ids: list[str]) -> None:
    if not dag_ids:
        from sluice.dag_builder import platform_dag_ids

        dag_ids = platform_dag_ids()
    upstream = upstream_ids(dag_ids)
    out = []
    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id.in_(dag_ids)).order_by(DagRun.start_date).all()
        for run in runs:
            of_run = (TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id)
            tis = session.query(TaskInstance).filter(*of_run).all()
            out.append(
                {
                    "dag_id": run.dag_id,
                    "run_id": run.run_id,
                    "state": str(run.state),
                    "start_date": run.start_date.isoformat() if run.start_date else None,
                    "end_date": run.end_date.isoformat() if run.end_date else None,
                    "seconds": _seconds(run.start_date, run.end_date),
                    "tasks": len(tis),
                    "task_seconds": round(sum(_seconds(t.start_date, t.end_date) or 0 for t in tis), 3),
                    "critical_path": critical_path(run, tis, upstream[run.dag_id]),
                }
            )
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
