"""Batches, receivers and Airflow runs shared by the tests of the checks (tests/unit/test_watch_*.py).

- :func:`faker_batch`: one real batch of the faker source (its connector from PyPI, 100
  records a stream) landed, committed to the bronze lake and loaded into a DuckDB
  warehouse, once per session; tests work on copies (:func:`copy_faker_batch`).
- :class:`StatsdReceiver`: a StatsD server on loopback (UDP) recording the datagrams.
- :func:`run_dag`: ``dag.test`` of a DAG file in a subprocess, on Airflow 3.3 or 2.11.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from datetime import datetime
from pathlib import Path

from environment import VENV2_BIN, VENV_BIN, isolated_environment

FAKER_BATCH = "20261130T000000Z"
FAKER_COUNT = 100
_faker: dict[str, Path] = {}


def faker_batch() -> Path:
    """A folder holding ``lake/`` and ``warehouse.duckdb`` with one faker batch (made once)."""
    if "folder" not in _faker:
        from sluice.core.sources import load_source
        from sluice.ingest.commit import commit_batch
        from sluice.ingest.local.sync import sync_batch
        from sluice.lake.storage import open_lake
        from sluice.warehouse.duckdb_load import load_batch

        folder = Path(tempfile.mkdtemp(prefix="sluice-watch-faker-"))
        atexit.register(shutil.rmtree, folder, True)
        source = load_source("faker")
        source = dataclasses.replace(source, connector_config={**source.connector_config, "count": FAKER_COUNT})
        lake = open_lake(str(folder / "lake"))
        sync_batch(source, FAKER_BATCH, lake=lake)
        for stream in source.streams:
            commit_batch(source.name, stream, FAKER_BATCH, lake)
            load_batch(source.name, stream.name, FAKER_BATCH, lake, folder / "warehouse.duckdb")
        _faker["folder"] = folder
    return _faker["folder"]


def copy_faker_batch(target: Path) -> tuple[object, Path]:
    """(lake, warehouse file) of a copy of :func:`faker_batch` under ``target``."""
    from sluice.lake.storage import open_lake

    shutil.copytree(faker_batch(), target, dirs_exist_ok=True)
    return open_lake(str(target / "lake")), target / "warehouse.duckdb"


class StatsdReceiver:
    """A StatsD server on a loopback UDP port, keeping every metric line it receives."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.port = self.socket.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.socket.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.lines += data.decode().splitlines()

    def values(self, prefix: str) -> dict[str, str]:
        """Metric name -> ``value|type`` of the lines whose name starts with ``prefix``."""
        found = {}
        for line in self.lines:
            name, _, rest = line.partition(":")
            if name.startswith(prefix):
                found[name] = rest
        return found

    def environment(self) -> dict[str, str]:
        """What makes an Airflow process send its metrics here."""
        return {
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(self.port),
            "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        }

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()


RUN_DAG = """
import json, os, sys
from datetime import datetime, timedelta, timezone

import airflow

from sluice.dag_builder import run_in_process

folder, dag_id = os.environ["AIRFLOW__CORE__DAGS_FOLDER"], sys.argv[1]
if airflow.__version__.startswith("2."):
    from airflow.models.dagbag import DagBag

    dag = DagBag(dag_folder=folder, include_examples=False).dags[dag_id]
else:
    from airflow.dag_processing.dagbag import BundleDagBag

    dag = BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder").dags[dag_id]
for run, start in enumerate(sys.argv[2:]):
    start = datetime.fromisoformat(start).replace(tzinfo=timezone.utc)
    if os.environ.get("FLAG"):
        open(os.environ["FLAG"] + str(run), "w").close()
    result = run_in_process(dag, start, start + timedelta(hours=6))
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in result.get_task_instances()}
    print("RUN", run, str(getattr(result.state, "value", result.state)), json.dumps(states), flush=True)
"""


@dataclasses.dataclass
class DagRun:
    state: str
    tasks: dict[str, str]


def airflow_environment(version: str, home: Path, data: Path) -> tuple[Path, dict[str, str]]:
    """(python, environment) of an Airflow ``version`` (``airflow3``: the session's migrated
    home; ``airflow2``: a new home under ``home``, migrated, with the platform's pools)."""
    if version == "airflow3":
        return VENV_BIN / "python", dict(os.environ)
    python = VENV2_BIN / "python"
    env = isolated_environment(home, data)
    pools = Path(env["PYTHONPATH"]).parent / "include" / "airflow" / "pools.json"
    for command in (["db", "migrate"], ["pools", "import", str(pools)]):
        subprocess.run([VENV2_BIN / "airflow", *command], env=env, check=True, capture_output=True, timeout=300)
    return python, env


def run_dag(
    python: Path, env: dict[str, str], dags: Path, dag_id: str, starts: list[datetime], folder: Path
) -> tuple[list[DagRun], str]:
    """``dag.test`` of ``dag_id`` from the folder ``dags`` for each interval start; the runs
    and the output. Before run ``n`` the file ``$FLAG<n>`` is created (when FLAG is set)."""
    script = folder / "run_dag.py"
    script.write_text(RUN_DAG)
    env = {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
    proc = subprocess.run(
        [python, script, dag_id, *(start.strftime("%Y-%m-%dT%H:%M") for start in starts)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    runs = []
    for line in proc.stdout.splitlines():
        if line.startswith("RUN "):
            _, _, state, tasks = line.split(" ", 3)
            runs.append(DagRun(state, json.loads(tasks)))
    return runs, output
