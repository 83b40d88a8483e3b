"""The faker slice end to end on the embedded stack, with real Airflow task execution.

One day (four 6-hour batches) is run three ways and must give the same lake and tables:
one batch at a time as ``make run`` does, as an Airflow 3 backfill through ``make
backfill`` (real scheduler) with the lake on S3, and as an Airflow 2.11 ``airflow dags
backfill``. Manual
runs and backfills mix: either may rerun an interval the other ran, and the run history
stays one run per interval with its real interval and duration.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

from e2e.snapshot import differences, pinned_environment, snapshot
from environment import ROOT, VENV_BIN, isolated_environment
from s3servers import use_bucket
from sluice.lake.storage import open_lake

pytestmark = pytest.mark.e2e
BATCH_STARTS = ["2026-11-20T00:00", "2026-11-20T06:00", "2026-11-20T12:00", "2026-11-20T18:00"]
BATCH_IDS = ["20261120T000000Z", "20261120T060000Z", "20261120T120000Z", "20261120T180000Z"]


def run_ok(command: list, env: dict[str, str], timeout: float) -> str:
    """Run a command from the project folder; its stdout, once it exited 0."""
    proc = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


def run_batch_command(start: str, *args: str) -> list:
    return [VENV_BIN / "python", ROOT / "include" / "scripts" / "run_batch.py", "--batch", start, *args]


def run_batch(env: dict[str, str], start: str, *args: str) -> str:
    return run_ok(run_batch_command(start, *args), env, 900)


def backfill(env: dict[str, str], start: str, end: str) -> str:
    """``make backfill`` of every platform DAG; its report, once every run succeeded."""
    output = run_ok(["make", "--no-print-directory", "backfill", f"START={start}", f"END={end}"], env, 1500)
    assert "on Airflow 3.3" in output and "all runs succeeded" in output
    return output


def assert_same(expected: dict, actual: dict) -> None:
    """The same lake and warehouse (:mod:`e2e.snapshot`); else each difference on its own line."""
    found = differences(expected, actual)
    assert not found, "the lake or the warehouse differs:\n" + "\n".join(found)


RUN_COLUMNS = ("logical_date", "data_interval_start", "data_interval_end", "run_type", "start_date", "end_date")


def metadata(airflow_home: Path, sql: str, params: list) -> list[tuple]:
    """Rows of a query on the Airflow home's metadata database."""
    con = sqlite3.connect(airflow_home / "airflow.db")
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def dag_runs(airflow_home: Path, dag_id: str) -> list[dict]:
    query = f"SELECT {', '.join(RUN_COLUMNS)} FROM dag_run WHERE dag_id = ? ORDER BY logical_date"
    runs = [dict(zip(RUN_COLUMNS, row, strict=True)) for row in metadata(airflow_home, query, [dag_id])]
    for run in runs:
        for column in RUN_COLUMNS:
            if column.endswith("date") or column.startswith("data_interval"):
                run[column] = datetime.fromisoformat(run[column]).replace(tzinfo=UTC)
    return runs


def task_states(airflow_home: Path, dag_id: str, logical_date: str) -> dict[str, str]:
    query = (
        "SELECT ti.task_id, ti.state FROM task_instance ti JOIN dag_run dr"
        " ON ti.dag_id = dr.dag_id AND ti.run_id = dr.run_id"
        " WHERE dr.dag_id = ? AND dr.logical_date LIKE ?"
    )
    return dict(metadata(airflow_home, query, [dag_id, f"{logical_date.replace('T', ' ')}%"]))


def assert_transform_built(airflow_home: Path, start: str) -> None:
    """The interval's transform ran its dbt build and every model and test task succeeded
    (a rerun whose build was skipped would leave the tables as they were and pass unseen)."""
    states = task_states(airflow_home, "transform", start)
    assert len([task for task in states if task.startswith("dbt.")]) > 20
    assert {task: state for task, state in states.items() if state != "success"} == {}


def assert_one_honest_run_per_interval(airflow_home: Path, starts: list[str]) -> None:
    """Each DAG has one run per interval: logical date = interval start, 6 hours of data,
    and a duration measured in minutes, not the hours between the interval and now."""
    for dag_id in ("ingest_faker", "transform"):
        runs = dag_runs(airflow_home, dag_id)
        assert [run["logical_date"] for run in runs] == [datetime.fromisoformat(s + "+00:00") for s in starts]
        for run in runs:
            assert run["data_interval_start"] == run["logical_date"]
            assert run["data_interval_end"] - run["data_interval_start"] == timedelta(hours=6)
            assert timedelta(0) < run["end_date"] - run["start_date"] < timedelta(minutes=15), (dag_id, run)


@pytest.fixture(scope="module")
def one_by_one(airflow_db, tmp_path_factory):
    """The day run batch by batch, in order, as ``make run`` runs a batch."""
    data = tmp_path_factory.mktemp("one-by-one")
    env = pinned_environment(isolated_environment(Path(os.environ["AIRFLOW_HOME"]), data))
    outputs = [run_batch(env, start) for start in BATCH_STARTS]
    return {"env": env, "data": data, "outputs": outputs, "snapshot": snapshot(data)}


def test_a_batch_reports_what_it_landed_and_where(one_by_one):
    output = one_by_one["outputs"][0]
    assert "ingest_faker            success" in output and "transform               success" in output
    assert "faker.users              read    1,000  landed    1,000  quarantined      0" in output
    assert str(one_by_one["data"] / "lake") in output


def test_every_layer_has_the_batches_rows(one_by_one):
    data = one_by_one["data"]
    users = DeltaTable(str(data / "lake" / "bronze" / "faker" / "users"))
    assert sorted(p["_sluice_batch"] for p in users.partitions()) == BATCH_IDS
    assert users.to_pyarrow_table().num_rows == 4 * 1000
    con = duckdb.connect(str(data / "warehouse" / "sluice.duckdb"), read_only=True)
    per_batch = con.execute("SELECT _sluice_batch, count(*) FROM bronze.faker__users GROUP BY 1 ORDER BY 1").fetchall()
    assert per_batch == [(batch, 1000) for batch in BATCH_IDS]
    counts = {
        table: con.execute(f"SELECT count(*), count(DISTINCT {key}) FROM {table}").fetchone()
        for table, key in [
            ("silver.customers", "customer_id"),
            ("silver.products", "product_id"),
            ("silver.purchases", "purchase_id"),
            ("gold.dim_customers", "customer_id"),
            ("gold.fct_purchases", "purchase_id"),
            ("marts.revenue_per_customer", "customer_id"),
        ]
    }
    assert counts["silver.customers"] == (1000, 1000)  # one row per user, not one per batch
    assert counts["silver.products"] == (100, 100)
    purchases = con.execute("SELECT count(DISTINCT id) FROM bronze.faker__purchases").fetchone()[0]
    assert counts["silver.purchases"] == counts["gold.fct_purchases"] == (purchases, purchases)
    assert counts["marts.revenue_per_customer"] == (1000, 1000)
    revenue = con.execute(
        "SELECT sum(gross_revenue), sum(net_revenue), sum(purchases) FROM marts.revenue_per_customer"
    ).fetchone()
    expected = con.execute(
        "SELECT sum(amount) FILTER (WHERE status <> 'abandoned'), sum(amount) FILTER (WHERE status = 'purchased'),"
        " count(*) FILTER (WHERE status <> 'abandoned') FROM gold.fct_purchases"
    ).fetchone()
    assert revenue == expected and revenue[0] > 0


def test_rerunning_a_batch_gives_identical_tables_and_lake_files(one_by_one):
    run_batch(one_by_one["env"], BATCH_STARTS[1])  # an earlier batch, after later ones ran
    assert_same(one_by_one["snapshot"], snapshot(one_by_one["data"]))
    assert_transform_built(Path(one_by_one["env"]["AIRFLOW_HOME"]), BATCH_STARTS[1])


def test_a_backfill_after_manual_runs_replaces_them_and_keeps_the_tables(one_by_one):
    home = Path(one_by_one["env"]["AIRFLOW_HOME"])
    backfill(one_by_one["env"], BATCH_STARTS[2], "2026-11-20T18:00")
    assert_same(one_by_one["snapshot"], snapshot(one_by_one["data"]))
    assert_one_honest_run_per_interval(home, BATCH_STARTS)
    assert_transform_built(home, BATCH_STARTS[2])
    run_types = [run["run_type"] for run in dag_runs(home, "transform")]
    assert run_types == ["manual", "manual", "backfill", "manual"]
    # marked completed, or Airflow refuses the next backfill of these DAGs
    assert metadata(home, "SELECT dag_id FROM backfill WHERE completed_at IS NULL", []) == []


def test_a_failing_model_fails_its_task_and_stops_only_what_depends_on_it(one_by_one, tmp_path):
    project = tmp_path / "dbt_project"
    shutil.copytree(ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    broken = project / "models" / "gold" / "dim_products.sql"
    broken.write_text(broken.read_text().replace("select", "select no_such_column,", 1))
    data = tmp_path / "data"
    shutil.copytree(one_by_one["data"], data)
    env = {
        **isolated_environment(Path(one_by_one["env"]["AIRFLOW_HOME"]), data),
        "SLUICE_DBT_PROJECT_DIR": str(project),
        "SLUICE_DBT_MANIFEST": str(project / "target" / "manifest.json"),
        "SLUICE_RETRY_DELAY_SECONDS": "1",  # the failing model's task retries (and fails) at once
    }
    run_ok(
        [VENV_BIN / "dbt", "parse", "--quiet", "--profiles-dir", project], {**env, "DBT_PROJECT_DIR": str(project)}, 300
    )
    command = run_batch_command(BATCH_STARTS[3], "--dag", "transform")
    proc = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1 and "transform               failed" in proc.stdout, proc.stdout
    states = task_states(Path(env["AIRFLOW_HOME"]), "transform", BATCH_STARTS[3])
    assert states["dbt.dbt_producer_watcher"] == "failed"
    assert states["dbt.dim_products.run"] == "failed"
    # not built by dbt, and said so: they waited for dim_products' task to spend its retries
    for task_id in ("dim_products.test", "fct_purchases.run", "fct_purchases.test", "revenue_per_customer.run"):
        assert states[f"dbt.{task_id}"] == "skipped", task_id
    for model in ("stg_faker__users", "customers", "dim_customers", "products", "purchases"):
        assert states[f"dbt.{model}.run"] == states[f"dbt.{model}.test"] == "success", model


@pytest.mark.s3
def test_airflow3_backfill_with_the_lake_on_s3_equals_running_the_batches_one_by_one(
    one_by_one, tmp_path, radosgw, monkeypatch, slack
):
    """The same day backfilled with the whole lake on S3 (radosgw), reached through an
    Airflow AWS connection: the same lake contents and tables as the local lake's. Every
    run is given 2 seconds: the scheduler finds them late, its executor alerts on Slack, and
    a successful run resolves the incident."""
    root = use_bucket(radosgw, monkeypatch)
    connection = {
        "conn_type": "aws",
        "login": radosgw.env["AWS_ACCESS_KEY_ID"],
        "password": radosgw.env["AWS_SECRET_ACCESS_KEY"],
        "extra": {"endpoint_url": radosgw.endpoint, "region_name": "us-east-1"},
    }
    env = {
        **pinned_environment(isolated_environment(tmp_path / "airflow", tmp_path / "data")),
        "SLUICE_LAKE_ROOT": root,
        "SLUICE_AWS_CONN_ID": "sluice_lake",
        "AIRFLOW_CONN_SLUICE_LAKE": json.dumps(connection),
        "AIRFLOW_CONN_SLACK_ALERTS": json.dumps({"conn_type": "slackwebhook", "password": slack.url}),
        "SLUICE_BATCH_LATE_HOURS": str(2 / 3600),
    }
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        env.pop(name)  # the connection alone points Sluice at the bucket
    lake = open_lake(root)
    output = backfill(env, "2026-11-20", "2026-11-21")
    assert output.count("  success") == 8  # both DAGs, four intervals each
    assert not (tmp_path / "data" / "lake").exists(), "nothing of the lake went to the local folder"
    assert_same(one_by_one["snapshot"], snapshot(tmp_path / "data", lake))
    # the wait for each batch and every model task ran in the triggerer: none was ever
    # queued for a worker
    reports = metadata(
        tmp_path / "airflow",
        "SELECT run_id, state, queued_dttm FROM task_instance WHERE dag_id = 'transform'"
        " AND (task_id = 'wait_for_faker' OR task_id LIKE 'dbt.%.run' OR task_id LIKE 'dbt.%.test')",
        [],
    )
    assert len({run_id for run_id, _, _ in reports}) == 4 and len(reports) >= 4 * 21
    assert {(state, queued) for _, state, queued in reports} == {("success", None)}
    # a manual run after the backfill reruns its interval in place: the same run, started again
    before = dag_runs(tmp_path / "airflow", "ingest_faker")
    assert f"Lake:      {root}" in run_batch(env, BATCH_STARTS[1])
    assert_same(one_by_one["snapshot"], snapshot(tmp_path / "data", lake))
    assert_one_honest_run_per_interval(tmp_path / "airflow", BATCH_STARTS)
    for start in BATCH_STARTS:
        assert_transform_built(tmp_path / "airflow", start)
    after = dag_runs(tmp_path / "airflow", "ingest_faker")
    assert [run["run_type"] for run in after] == ["backfill"] * 4
    assert after[1]["start_date"] > before[1]["end_date"] and after[2] == before[2]
    # each DAG's late runs are one incident at a time, resolved by its last successful run
    headlines = [text.split("*")[1] for text in slack.texts() if "Batch late" in text]
    for dag_id in ("ingest_faker", "transform"):
        mine = [headline for headline in headlines if headline.endswith(f"Batch late: {dag_id}")]
        assert mine and mine[0] == f"Batch late: {dag_id}" and mine[-1] == f"Resolved: Batch late: {dag_id}", headlines
        assert all(first != second for first, second in itertools.pairwise(mine)), headlines  # never twice in a row


@pytest.mark.airflow2
def test_airflow2_backfill_equals_running_the_batches_one_by_one(one_by_one, airflow2_backfill):
    returncode, log = airflow2_backfill.wait(timeout=1800)
    assert returncode == 0, log[-4000:]
    assert log.count("on Airflow 2.11") == 2 and log.count("all runs succeeded") == 2
    assert_same(one_by_one["snapshot"], snapshot(airflow2_backfill.data_dir))
