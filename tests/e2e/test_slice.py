"""The platform's day run one batch at a time, then again in parts: a batch rerun, a
backfill over manual runs, a failing model. Manual runs and backfills mix: either may rerun
an interval the other ran, and the run history stays one run per interval with its real
interval and duration.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

from e2e.one_day import (
    BATCH_IDS,
    BATCH_STARTS,
    assert_one_honest_run_per_interval,
    assert_same,
    assert_transform_built,
    backfill,
    dag_runs,
    metadata,
    one_by_one,
    run_batch,
    run_batch_command,
    run_ok,
    task_states,
)
from e2e.snapshot import snapshot
from environment import ROOT, VENV_BIN, isolated_environment

pytestmark = [pytest.mark.e2e, pytest.mark.one_day]


@pytest.fixture(scope="module")
def day():
    return one_by_one()


def test_a_batch_reports_what_it_landed_and_where(day):
    output = day["outputs"][0]
    assert "ingest_faker            success" in output and "transform               success" in output
    assert "ingest_company          success" in output and "sample exports          already in the inbox" in output
    assert "faker.users              read    1,000  landed    1,000  quarantined      0" in output
    assert str(day["data"] / "lake") in output


def test_the_first_batch_lands_every_company_export_in_the_inbox_and_later_ones_none(day):
    """Each stream's bronze table holds every row of the four batches' exports (duplicates
    and dirt included, as the truth lists them), all landed by the first batch."""
    lake = day["data"] / "lake"
    con = duckdb.connect(str(day["data"] / "warehouse" / "sluice.duckdb"), read_only=True)
    for stream in ("customers", "projects", "invoices", "time_entries", "ad_spend"):
        truth = [line for path in (lake / "truth" / "company" / stream).glob("*.jsonl") for line in path.open()]
        assert len(truth) > 4, stream
        rows = con.execute(f"SELECT _sluice_batch, count(*) FROM bronze.company__{stream} GROUP BY 1").fetchall()
        assert rows == [(BATCH_IDS[0], len(truth))], stream
        landed = DeltaTable(str(lake / "bronze" / "company" / stream)).to_pyarrow_table().num_rows
        assert landed == len(truth), stream


def test_every_layer_has_the_batches_rows(day):
    data = day["data"]
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


def test_rerunning_a_batch_gives_identical_tables_and_lake_files(day):
    run_batch(day["env"], BATCH_STARTS[1])  # an earlier batch, after later ones ran
    assert_same(day["snapshot"], snapshot(day["data"]))
    assert_transform_built(Path(day["env"]["AIRFLOW_HOME"]), BATCH_STARTS[1])


def test_a_backfill_after_manual_runs_replaces_them_and_keeps_the_tables(day):
    home = Path(day["env"]["AIRFLOW_HOME"])
    backfill(day["env"], BATCH_STARTS[2], "2026-11-20T18:00")
    assert_same(day["snapshot"], snapshot(day["data"]))
    assert_one_honest_run_per_interval(home, BATCH_STARTS)
    assert_transform_built(home, BATCH_STARTS[2])
    run_types = [run["run_type"] for run in dag_runs(home, "transform")]
    assert run_types == ["manual", "manual", "backfill", "manual"]
    # marked completed, or Airflow refuses the next backfill of these DAGs
    assert metadata(home, "SELECT dag_id FROM backfill WHERE completed_at IS NULL", []) == []


def test_a_failing_model_fails_its_task_and_stops_only_what_depends_on_it(day, tmp_path):
    project = tmp_path / "dbt_project"
    shutil.copytree(ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    broken = project / "models" / "gold" / "dim_products.sql"
    broken.write_text(broken.read_text().replace("select", "select no_such_column,", 1))
    data = tmp_path / "data"
    shutil.copytree(day["data"], data)
    env = {
        **isolated_environment(Path(day["env"]["AIRFLOW_HOME"]), data),
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
