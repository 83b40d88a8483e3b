"""The faker slice end to end on the embedded stack, with real Airflow task execution.

One day (four 6-hour batches) is run three ways and must give the same lake and tables:
one batch at a time as ``make run`` does, as an Airflow 3 backfill through ``make
backfill`` (real scheduler), and as an Airflow 2.11 ``airflow dags backfill``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

from e2e.snapshot import differences, snapshot
from environment import ROOT, VENV_BIN, isolated_environment

pytestmark = pytest.mark.e2e
BATCH_STARTS = ["2026-11-20T00:00", "2026-11-20T06:00", "2026-11-20T12:00", "2026-11-20T18:00"]
BATCH_IDS = ["20261120T000000Z", "20261120T060000Z", "20261120T120000Z", "20261120T180000Z"]


def run_ok(command: list, env: dict[str, str], timeout: float) -> str:
    """Run a command from the project folder; its stdout, once it exited 0."""
    proc = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


def run_batch(env: dict[str, str], start: str) -> str:
    return run_ok([VENV_BIN / "python", ROOT / "include" / "scripts" / "run_batch.py", "--batch", start], env, 900)


@pytest.fixture(scope="module")
def one_by_one(airflow_db, tmp_path_factory):
    """The day run batch by batch, in order, as ``make run`` runs a batch."""
    data = tmp_path_factory.mktemp("one-by-one")
    env = isolated_environment(Path(os.environ["AIRFLOW_HOME"]), data)
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
    assert differences(one_by_one["snapshot"], snapshot(one_by_one["data"])) == []


def test_airflow3_backfill_equals_running_the_batches_one_by_one(one_by_one, tmp_path):
    env = isolated_environment(tmp_path / "airflow", tmp_path / "data")
    for dag in ("ingest_faker", "transform"):
        output = run_ok(
            ["make", "--no-print-directory", "backfill", f"DAG={dag}", "START=2026-11-20", "END=2026-11-21"], env, 1500
        )
        assert "on Airflow 3.3" in output and output.count("  success") == 4
    assert differences(one_by_one["snapshot"], snapshot(tmp_path / "data")) == []


@pytest.mark.airflow2
def test_airflow2_backfill_equals_running_the_batches_one_by_one(one_by_one, airflow2_backfill):
    returncode, log = airflow2_backfill.wait(timeout=1800)
    assert returncode == 0, log[-4000:]
    assert log.count("on Airflow 2.11") == 2 and log.count("all runs succeeded") == 2
    assert differences(one_by_one["snapshot"], snapshot(airflow2_backfill.data_dir)) == []
