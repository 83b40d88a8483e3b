"""DAG-folder parse time, measured in fresh processes (see parse_child.py)."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from common import ROOT, VENV_PYTHON, BenchmarkError, make_env, median

CHILD = Path(__file__).with_name("parse_child.py")
DAGS = ROOT / "dags"


def parse_once(path: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run parse_child.py on ``path`` in a fresh interpreter and return its timings."""
    with tempfile.TemporaryDirectory(prefix="sluice-bench-parse-") as tmp:
        output = Path(tmp) / "parse.json"
        proc = subprocess.run(
            [str(VENV_PYTHON), str(CHILD), str(path), str(output)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not output.is_file():
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
            raise BenchmarkError(f"parsing {path} failed (exit {proc.returncode}):\n{tail}")
        return json.loads(output.read_text())


def _median_per_dag(runs: list[dict[str, Any]]) -> dict[str, float]:
    dag_ids = sorted({dag_id for run in runs for dag_id in run["per_dag_seconds"]})
    return {dag_id: median([run["per_dag_seconds"][dag_id] for run in runs]) for dag_id in dag_ids}


def isolated_per_dag(files: list[str], repeats: int, env: dict[str, str]) -> dict[str, float]:
    """Cold parse time of each DAG file alone in a fresh process, per DAG id.

    Unlike the per-file figures of a whole-folder fill, these do not depend on which
    file happened to pay for the shared imports first.
    """
    result: dict[str, float] = {}
    for name in files:
        runs = [parse_once(DAGS / name, env) for _ in range(repeats)]
        for dag_id in runs[0]["per_dag_seconds"]:
            result[dag_id] = median([run["cold_seconds"] for run in runs])
    return dict(sorted(result.items()))


def bench_parse(repeats: int = 3) -> dict[str, Any]:
    """DagBag fill of dags/: cold (first fill in a fresh process) and warm (second).

    Median of ``repeats`` fresh processes, with Airflow imported before the clock
    starts. ``dag_parse_per_dag_seconds`` comes from the DagBag's own per-file stats
    of the cold fill; ``dag_parse_per_dag_isolated_seconds`` parses each file alone.
    """
    env = make_env()
    runs = [parse_once(DAGS, env) for _ in range(repeats)]
    files = sorted(runs[0]["per_file_seconds"])
    return {
        "dag_parse_seconds": median([run["cold_seconds"] for run in runs]),
        "dag_parse_warm_seconds": median([run["warm_seconds"] for run in runs]),
        "dag_parse_cold_runs_seconds": [run["cold_seconds"] for run in runs],
        "dag_parse_warm_runs_seconds": [run["warm_seconds"] for run in runs],
        "dag_parse_per_dag_seconds": _median_per_dag(runs),
        "dag_parse_per_dag_isolated_seconds": isolated_per_dag(files, repeats, env),
        "dag_parse_airflow_import_seconds": median([run["airflow_import_seconds"] for run in runs]),
        "dag_parse_dag_count": runs[0]["dag_count"],
        "dag_parse_task_count": runs[0]["task_count"],
        "dag_parse_repeats": repeats,
    }
