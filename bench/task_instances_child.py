"""Print, as JSON, the task instances of a DAG's latest run from Airflow's metadata DB.

Usage: ``task_instances_child.py <dag_id>``, with the environment (AIRFLOW_HOME, database
settings) of the Airflow home to read; whatever database that environment configures.
"""

from __future__ import annotations

import json
import sys

from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def main(dag_id: str) -> None:
    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        if run is None:
            raise SystemExit(f"no run of {dag_id}")
        tasks = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id)
        result = {
            "run_id": run.run_id,
            "state": str(run.state),
            "start_date": _iso(run.start_date),
            "end_date": _iso(run.end_date),
            "tasks": [
                {
                    "task_id": ti.task_id,
                    "map_index": ti.map_index,
                    "state": str(ti.state),
                    "try_number": ti.try_number,
                    "start_date": _iso(ti.start_date),
                    "end_date": _iso(ti.end_date),
                }
                for ti in tasks
            ],
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
