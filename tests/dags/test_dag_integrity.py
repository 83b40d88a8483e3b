"""The DAG folder loads on Airflow 3.3 and 2.11, follows the conventions, and parses cheaply."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from environment import ROOT, VENV2_BIN, VENV_BIN, isolated_environment

DAG_FOLDER = ROOT / "dags"
EXPECTED_DAGS = {"ingest_company", "ingest_faker", "transform", "gdpr_erasure"}


def fill_dagbag(python: Path, tmp_path: Path, dag_folder: Path = DAG_FOLDER, **env_vars: str) -> dict:
    env = {**isolated_environment(tmp_path / "airflow", tmp_path / "data"), **env_vars}
    proc = subprocess.run(
        [python, ROOT / "tests" / "dags" / "check_dagbag.py", dag_folder],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=["airflow3", "airflow2"])
def dagbag(request, tmp_path_factory) -> dict:
    python = (VENV_BIN if request.param == "airflow3" else VENV2_BIN) / "python"
    if not python.exists():
        pytest.fail(f"{python} missing: run `make test`, which installs both Airflow versions")
    return fill_dagbag(python, tmp_path_factory.mktemp(request.param))


def test_loads_without_import_errors(dagbag):
    assert dagbag["import_errors"] == {}
    assert set(dagbag["dags"]) == EXPECTED_DAGS
    assert dagbag["airflow"].startswith(("3.3", "2.11"))


def test_parsing_never_runs_dbt_or_touches_the_network(dagbag):
    assert not dagbag["dbt_imported"]
    assert not [command for command in dagbag["spawned"] if "dbt" in command]
    assert dagbag["network"] == []


def test_every_dag_follows_the_conventions(dagbag):
    for dag_id, dag in dagbag["dags"].items():
        assert dag["violations"] == [], dag_id
        assert "sluice" in dag["tags"] and len(dag["tags"]) >= 2
        assert dag["owners"] == ["data-platform"]
        assert dag["doc_md"] and not dag["catchup"] and dag["max_active_runs"] == 1
        assert dag["backoff"]
        cron = "0 3 * * *" if dag_id == "gdpr_erasure" else "0 */6 * * *"
        assert (dag["timetable"], dag["cron"], dag["timezone"]) == ("CronDataIntervalTimetable", cron, "UTC")


def test_ingestion_lands_then_commits_and_loads_each_stream_then_measures_and_publishes_its_asset(dagbag):
    tasks = dagbag["dags"]["ingest_faker"]["tasks"]
    for stream in ("users", "products", "purchases"):
        assert tasks[f"{stream}.commit"]["upstream"] == ["land"]
        assert tasks[f"{stream}.load"]["upstream"] == [f"{stream}.commit"]
        assert tasks[f"{stream}.load"]["pool"] == "sluice_warehouse"
    # the batch's metrics run after every load and publish it: a blocking breach holds it
    assert tasks["metrics"]["outlets"] == ["sluice.bronze.faker"]
    assert tasks["metrics"]["upstream"] == ["products.load", "purchases.load", "users.load"]
    assert (tasks["metrics"]["operator"], tasks["metrics"]["pool"]) == ("BatchMetricsOperator", "sluice_warehouse")
    assert "publish" not in tasks  # no task of its own: a scheduler hop that did nothing
    assert tasks["land"]["operator"] == "LandOperator"
    company = dagbag["dags"]["ingest_company"]["tasks"]  # a files source: the same shape
    streams = ("ad_spend", "customers", "invoices", "projects", "time_entries")
    assert company["metrics"]["upstream"] == [f"{stream}.load" for stream in streams]
    assert all(company[f"{stream}.commit"]["upstream"] == ["land"] for stream in streams)


@pytest.mark.parametrize("python", [VENV_BIN / "python", VENV2_BIN / "python"], ids=["airflow3", "airflow2"])
def test_an_airbyte_source_gets_the_same_two_line_dag_with_the_server_driver(python, tmp_path):
    """The driver is chosen by the declaration; a warehouse destination has no lake commit."""
    sources, dags = tmp_path / "include" / "sources", tmp_path / "dags"
    sources.mkdir(parents=True)
    dags.mkdir()
    for name, destination in (("shop", "lake"), ("crm", "warehouse")):
        (sources / f"{name}.yml").write_text(
            "driver: airbyte\n"
            f"airbyte: {{connection_id: c-{name}, conn_id: airbyte_prod, destination: {destination}}}\n"
            "streams:\n  orders: {record_key: id}\n  refunds: {record_key: id}\n"
        )
        (dags / f"{name}.py").write_text(
            f'"""Airflow DAG: ingest {name}."""\n\n'
            f'from sluice.dag_builder import ingestion_dag\n\ndag = ingestion_dag("{name}")\n'
        )
    result = fill_dagbag(python, tmp_path, dags, SLUICE_INCLUDE_DIR=str(tmp_path / "include"))
    assert result["import_errors"] == {} and set(result["dags"]) == {"ingest_shop", "ingest_crm"}
    assert not [command for command in result["spawned"] if "dbt" in command] and result["network"] == []
    shop = result["dags"]["ingest_shop"]["tasks"]
    assert (shop["land"]["operator"], shop["land"]["deferrable"]) == ("AirbyteSyncOperator", True)
    assert shop["orders.commit"]["upstream"] == ["land"] and shop["refunds.load"]["upstream"] == ["refunds.commit"]
    assert shop["metrics"]["upstream"] == ["orders.load", "refunds.load"]
    assert shop["metrics"]["outlets"] == ["sluice.bronze.shop"]
    crm = result["dags"]["ingest_crm"]["tasks"]
    assert set(crm) == {"land", "metrics"}
    assert crm["metrics"]["upstream"] == ["land"] and crm["metrics"]["outlets"] == ["sluice.bronze.crm"]
    assert result["dags"]["ingest_crm"]["violations"] == []


def test_erasure_is_one_task_in_the_warehouse_writers_pool(dagbag):
    tasks = dagbag["dags"]["gdpr_erasure"]["tasks"]
    assert set(tasks) == {"erase"} and tasks["erase"]["pool"] == "sluice_warehouse"
    assert tasks["erase"]["operator"] == "GdprEraseOperator"


def test_transform_builds_once_then_shows_every_model_and_its_tests_at_once(dagbag):
    tasks = dagbag["dags"]["transform"]["tasks"]
    assert tasks["wait_for_faker"]["inlets"] == ["sluice.bronze.faker"]
    assert tasks["wait_for_company"]["inlets"] == ["sluice.bronze.company"]
    # freshness of the bronze tables first: the build leaves out what is built from stale ones
    assert sorted(tasks["freshness"]["upstream"]) == ["wait_for_company", "wait_for_faker"]
    assert tasks["freshness"]["operator"] == "FreshnessCheckOperator"
    build = tasks["dbt.dbt_producer_watcher"]
    assert build["upstream"] == ["freshness"] and build["pool"] == "sluice_warehouse"
    models = {task_id.split(".")[1] for task_id in tasks if task_id.startswith("dbt.") and task_id.endswith(".run")}
    assert {"stg_faker__users", "customers", "dim_customers", "fct_purchases", "revenue_per_customer"} <= models
    # every model and its tests is a task reporting once the build is done, failed or not:
    # one scheduler hop after the build, not one per layer
    for model in models:
        for task_id in (f"dbt.{model}.run", f"dbt.{model}.test"):
            assert tasks[task_id]["upstream"] == ["dbt.dbt_producer_watcher"], task_id
            assert tasks[task_id]["trigger_rule"] == "one_done", task_id
        # dbt's order is kept for a node that was not built: it waits for what it depends on
        assert tasks[f"dbt.{model}.test"]["dbt_upstream"] == [f"dbt.{model}.run"]
    assert tasks["dbt.stg_faker__users.run"]["dbt_upstream"] == []
    assert tasks["dbt.dim_customers.run"]["dbt_upstream"] == ["dbt.customers.test"]
    assert "dbt.fct_purchases.test" in tasks["dbt.revenue_per_customer.run"]["dbt_upstream"]
    # on Airflow 3 they start in the triggerer and end there when their node built; Airflow
    # 2.11's backfill has no triggerer: there they run on workers
    for task_id, task in tasks.items():
        if task_id.endswith((".run", ".test")):
            if dagbag["airflow"].startswith("3"):
                assert task["start_trigger"]["trigger"] == "ReportTrigger", task_id
                assert task["start_trigger"]["resumes_in"] == "report_on_worker", task_id
                assert task["start_trigger"]["kwargs"]["producer_task_id"] == "dbt.dbt_producer_watcher"
                assert task["start_trigger"]["kwargs"]["model_unique_id"].startswith("model.sluice.")
            else:
                assert task["start_trigger"] is None, task_id
    assert tasks["wait_for_faker"]["deferrable"] == dagbag["airflow"].startswith("3")
    if dagbag["airflow"].startswith("3"):
        wait = tasks["wait_for_faker"]["start_trigger"]
        assert wait["trigger"] == "PublishedTrigger" and wait["resumes_in"] == "execute_complete"
        assert wait["kwargs"]["external_dag_id"] == "ingest_faker"
        assert wait["kwargs"]["external_task_ids"] == ["metrics"]
    else:
        assert tasks["wait_for_faker"]["start_trigger"] is None
    # a retried build would be skipped by Cosmos: the model tasks retry, each running its model
    assert build["retries"] == 0 and tasks["dbt.dim_customers.run"]["retries"] >= 2
    # the built models' freshness once the build is done, beside the model tasks' reports
    assert tasks["model_freshness"]["upstream"] == ["dbt.dbt_producer_watcher"]
    assert tasks["model_freshness"]["trigger_rule"] == "none_failed"
    # only the build and the checks (which record into ops.batch_metrics) write to the warehouse
    writers = [task_id for task_id, task in tasks.items() if task["pool"] == "sluice_warehouse"]
    assert sorted(writers) == ["dbt.dbt_producer_watcher", "freshness", "model_freshness"]


def test_cluster_policy_rejects_a_dag_that_breaks_the_conventions(tmp_path):
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "careless.py").write_text(
        "from datetime import datetime\n"
        "from airflow.providers.common.compat.sdk import DAG\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        "with DAG('careless', schedule=None, start_date=datetime(2026, 1, 1)) as dag:\n"
        "    EmptyOperator(task_id='t')\n"
    )
    result = fill_dagbag(VENV_BIN / "python", tmp_path, folder)
    assert "careless" not in result["dags"]
    (error,) = result["import_errors"].values()
    assert "DAG careless" in error and "has no doc_md" in error and "retries=0" in error
