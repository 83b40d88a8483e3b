"""Fill a DagBag twice in this (fresh) process and write the timings as JSON.

Usage: ``parse_child.py <dag_folder_or_file> <output.json>``

Airflow is imported before the clock starts, as in the DAG processor, whose forked
children parse one file each with Airflow already loaded; and the objects it made are
frozen out of the garbage collector's reach (``gc.freeze()``), as the DAG processor's
manager freezes them before it forks those children. Unfrozen, each full collection
walks Airflow's own objects again: that doubled a cold fill here (0.43–0.58 s against
0.19–0.22 s for ``dags/transform.py``). The first fill is cold (it
pays for the imports the DAG files make: Cosmos, the platform's builders); the second
is warm (those modules are cached, the DAG files themselves run again).
"""

from __future__ import annotations

import ast
import gc
import json
import sys
import time
from pathlib import Path

IMPORT_START = time.perf_counter()
import airflow  # noqa: E402 (timed on purpose)

try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # older layout
    from airflow.models.dagbag import DagBag
AIRFLOW_IMPORT_SECONDS = time.perf_counter() - IMPORT_START
gc.freeze()


def _dag_ids(stat) -> list[str]:
    """DAG ids of one FileLoadStat (Airflow stores them as the repr of a list)."""
    try:
        return list(ast.literal_eval(stat.dags))
    except (ValueError, SyntaxError):
        return [stat.dags]


def fill(path: str) -> tuple[float, DagBag]:
    """Seconds to fill a DagBag from ``path``; raises on import errors."""
    start = time.perf_counter()
    bag = DagBag(dag_folder=path)
    seconds = time.perf_counter() - start
    if bag.import_errors:
        raise SystemExit(f"import errors in {path}: {json.dumps(bag.import_errors)}")
    if not bag.dags:
        raise SystemExit(f"no DAG found in {path}")
    return seconds, bag


def main(path: str, output: str) -> None:
    cold, bag = fill(path)
    warm, _ = fill(path)
    per_dag = {}
    per_file = {}
    for stat in bag.dagbag_stats:
        seconds = stat.duration.total_seconds()
        per_file[stat.file] = seconds
        for dag_id in _dag_ids(stat):
            per_dag[dag_id] = seconds
    result = {
        "airflow_version": airflow.__version__,
        "airflow_import_seconds": AIRFLOW_IMPORT_SECONDS,
        "cold_seconds": cold,
        "warm_seconds": warm,
        "per_dag_seconds": per_dag,
        "per_file_seconds": per_file,
        "dag_count": len(bag.dags),
        "task_count": sum(len(dag.tasks) for dag in bag.dags.values()),
    }
    Path(output).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(*sys.argv[1:3])
