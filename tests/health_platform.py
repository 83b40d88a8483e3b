"""The states of the health page's tests that one real batch cannot produce, shaped by hand
beside it: sources, DAG runs made by Airflow itself, check results, an incident and erasure
requests in the lake the real batch wrote.

The browser test runs one real batch of the platform first (``run_batch``: the faker
source's ingestion and the transform) and builds this beside it, in its lake and metadata
database; that batch's runs, row counts, freshness and metrics are on the page as it wrote
them. What is shaped here, and why a real batch cannot give it:

- the ``shop`` source's runs: a failed batch after two successful ones (the page shows the
  last success and links the failed latest run) and an older interval rerun after them (a
  backfill: the last batch is by interval, not by when it ran), with the failure's
  incident; one real batch succeeds once;
- the ``crm`` source, declared but never run;
- check results past their thresholds (freshness warn and error, a superseded breach, a
  duplicate-keys error whose detail holds markup): every check of a real batch passes;
- erasure requests in every state (waiting, purge pending, verification failed, done,
  rejected): a batch erases no one.

Each planned run is a real ``dag.test`` of a DAG named like a source's ingestion DAG: its
``land`` task returns what ``LandOperator`` returns (read, landed and
quarantined per stream) and each ``<stream>.load`` what ``WarehouseLoadOperator`` returns,
or ``land`` fails (after its retries; the platform's failure callback opens an incident in
the lake of ``SLUICE_LAKE_ROOT``). Airflow records the runs, their intervals and the return
values in the metadata database of the environment given.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PROBE_DAGS = '''
"""Ingestion DAGs of the test sources, built like the platform's (callbacks, retries)."""
import json
import os

from airflow.providers.common.compat.sdk import TaskGroup
from airflow.providers.standard.operators.python import PythonOperator

from sluice.core.batch import batch_id
from sluice.dag_builder import platform_dag

PLAN = json.loads(os.environ["SLUICE_PROBE_PLAN"])


def land(dag_id, data_interval_start=None, **_):
    counts = PLAN[dag_id][batch_id(data_interval_start)]["land"]
    if counts is None:
        raise RuntimeError("the connector exited with 1")
    return counts


def load(dag_id, stream, data_interval_start=None, **_):
    rows = PLAN[dag_id][batch_id(data_interval_start)]["loads"][stream]
    return {"table": f"bronze.{dag_id}__{stream}", "rows": rows}


for dag_id, batches in PLAN.items():
    streams = sorted({s for spec in batches.values() for s in spec["loads"]})
    with platform_dag(dag_id, doc_md="A test source's ingestion.", tags=["ingest"]) as dag:
        landing = PythonOperator(task_id="land", python_callable=land, op_kwargs={"dag_id": dag_id})
        for stream in streams:
            with TaskGroup(stream):
                landing >> PythonOperator(
                    task_id="load", python_callable=load, op_kwargs={"dag_id": dag_id, "stream": stream}
                )
    globals()[dag_id] = dag
'''

RUNNER = """
import json, os, sys
from datetime import datetime

import airflow

from sluice.dag_builder import run_in_process

folder = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
if airflow.__version__.startswith("2."):
    from airflow.models.dagbag import DagBag

    dags = DagBag(dag_folder=folder, include_examples=False).dags
else:
    from airflow.dag_processing.dagbag import BundleDagBag

    dags = BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder").dags
for dag_id, end in json.loads(sys.argv[1]):
    end = datetime.fromisoformat(end)
    run = run_in_process(dags[dag_id], end, end)
    print("RUN", json.dumps([dag_id, run.run_id, str(run.state)]), flush=True)
"""


@dataclass(frozen=True)
class PlannedRun:
    """A run of ``dag_id`` over the 6-hour batch ``batch`` (its interval start).

    :param land: per stream ``{"read", "landed", "quarantined"}``, or None: ``land`` fails
    :param loads: rows loaded per stream
    """

    dag_id: str
    batch: str
    land: dict[str, dict[str, int]] | None
    loads: dict[str, int]


def make_runs(python: Path, env: dict[str, str], folder: Path, runs: list[PlannedRun]) -> dict[tuple[str, str], str]:
    """Run ``runs`` in order with the Airflow of ``python``; each run's id by (dag_id, batch)."""
    from sluice.core.batch import batch_start

    plan: dict[str, dict[str, dict]] = {}
    for run in runs:
        plan.setdefault(run.dag_id, {})[run.batch] = {"land": run.land, "loads": run.loads}
    dags = folder / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "probe_ingestion.py").write_text(PROBE_DAGS)
    (folder / "run_probe.py").write_text(RUNNER)
    env = {
        **env,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "SLUICE_PROBE_PLAN": json.dumps(plan),
        "SLUICE_RETRY_DELAY_SECONDS": "0",  # a failing land's two retries, at once
    }
    # a run covers the interval that ends at its logical date (manual runs of a data-interval timetable)
    order = [[run.dag_id, (batch_start(run.batch) + timedelta(hours=6)).isoformat()] for run in runs]
    proc = subprocess.run(
        [python, folder / "run_probe.py", json.dumps(order)], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    made = [json.loads(line[4:]) for line in proc.stdout.splitlines() if line.startswith("RUN ")]
    assert len(made) == len(runs), proc.stdout[-3000:]
    ids = {}
    for run, (dag_id, run_id, state) in zip(runs, made, strict=True):
        expected = "failed" if run.land is None else "success"
        assert state.endswith(expected), (dag_id, run_id, state, proc.stdout[-3000:] + proc.stderr[-3000:])
        ids[(dag_id, run.batch)] = run_id
    return ids


B0, B1, B2, B3 = "20261119T180000Z", "20261120T000000Z", "20261120T060000Z", "20261120T120000Z"
EMAIL = "ada.lovelace@example.com"
SOURCES = {
    "shop": """
        connector: source-shop
        owner: sales-data
        streams:
          customers: {record_key: id, subject_key: email}
          orders: {record_key: id}
    """,
    "crm": """
        connector: source-crm
        streams:
          contacts: {record_key: id}
    """,
}
# shop: two successful batches, an older interval rerun after them (a backfill), then a failed batch
RUNS = [
    PlannedRun(
        "ingest_shop",
        B1,
        {
            "customers": {"read": 5, "landed": 5, "quarantined": 0},
            "orders": {"read": 10, "landed": 9, "quarantined": 1},
        },
        {"customers": 5, "orders": 9},
    ),
    PlannedRun(
        "ingest_shop",
        B2,
        {
            "customers": {"read": 7, "landed": 7, "quarantined": 0},
            "orders": {"read": 2345, "landed": 2301, "quarantined": 44},
        },
        {"customers": 7, "orders": 2301},
    ),
    PlannedRun(
        "ingest_shop",
        B0,
        {"customers": {"read": 1, "landed": 1, "quarantined": 0}, "orders": {"read": 3, "landed": 3, "quarantined": 0}},
        {"customers": 1, "orders": 3},
    ),
    PlannedRun("ingest_shop", B3, None, {"customers": 0, "orders": 0}),
]
NOW = datetime(2026, 11, 20, 19, 0, tzinfo=UTC)


def check(table: str, check: str, metric: str, value: float, status: str, minutes_ago: int, **fields: Any) -> Any:
    from sluice.checks.results import CheckResult

    values = {
        "checked_at": NOW - timedelta(minutes=minutes_ago),
        "dag_id": "ingest_shop",
        "batch": B2,
        "source": "shop",
        "table_name": table,
        "check": check,
        "metric": metric,
        "value": value,
        "threshold": None,
        "status": status,
        "blocking": False,
        "detail": f"{metric} of {table}",
        **fields,
    }
    return CheckResult(**values)


CHECKS = [
    # the older freshness result of orders breached; the newer one passes and is what counts
    check("bronze.shop__orders", "freshness", "lag_seconds", 50000, "error", 300, threshold=43200),
    check("bronze.shop__orders", "freshness", "lag_seconds", 7500, "pass", 10, threshold=43200),
    check("bronze.shop__customers", "freshness", "lag_seconds", 30000, "warn", 10, threshold=21600),
    check(
        "silver.orders",
        "uniqueness",
        "duplicate_keys",
        17,
        "error",
        20,
        threshold=0,
        source=None,
        blocking=True,
        detail="17 duplicate order ids <script>alert(1)</script>",
    ),
]


def write_audit(lake: Any, request_id: str, steps: list[tuple[str, dict]]) -> None:
    from sluice.erasure import audit

    for step, details in steps:
        audit.append(lake, request_id, "hash-of-" + request_id, step, details, NOW - timedelta(days=1))


def build_platform(
    python: Path, env: dict[str, str], root: Path, *, lake_root: str | None = None, declared: Iterable[Path] = ()
) -> dict[str, Any]:
    """Write the platform under ``root`` and make its runs with the Airflow of ``python`` and
    ``env`` (whose metadata database is migrated): the environment that reads it, the run
    ids by (dag_id, batch), and ``root``.

    :param lake_root: the lake to write to (default: ``root/lake``), such as the one a real
        batch wrote in ``env``
    :param declared: source declarations (YAML files) listed beside the test sources, such
        as the platform's own, whose real batch then shows too
    """
    from sluice.checks import results
    from sluice.erasure.requests import ErasureRequest, record_requests
    from sluice.lake.storage import open_lake

    sources = root / "include" / "sources"
    sources.mkdir(parents=True)
    for path in declared:
        shutil.copy(path, sources / path.name)
    for name, text in SOURCES.items():
        (sources / f"{name}.yml").write_text(textwrap.dedent(text))
    env = {**env, "SLUICE_INCLUDE_DIR": str(root / "include"), "SLUICE_LAKE_ROOT": lake_root or str(root / "lake")}
    run_ids = make_runs(python, env, root / "probe", RUNS)
    lake = open_lake(env["SLUICE_LAKE_ROOT"])
    results.record(lake, CHECKS)
    record_requests(lake, [ErasureRequest("req-waiting", {"email": [EMAIL]})])
    clean, dirty = {"clean": True, "lake_findings": []}, {"clean": False, "lake_findings": [{"type": "email"}]}
    write_audit(lake, "req-done", [(s, {}) for s in ("resolved", "erased_warehouse", "erased_lake", "purged")])
    write_audit(lake, "req-done", [("verified", clean), ("done", {})])
    write_audit(lake, "req-purge", [(s, {}) for s in ("resolved", "erased_warehouse", "erased_lake")])
    write_audit(lake, "req-dirty", [(s, {}) for s in ("resolved", "erased_warehouse", "erased_lake", "purged")])
    write_audit(lake, "req-dirty", [("verified", dirty)])
    write_audit(lake, "req-nobody", [("rejected", {"reason": f"nobody holds {EMAIL}"})])
    return {"env": env, "run_ids": run_ids, "root": root}
