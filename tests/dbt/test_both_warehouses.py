"""The dbt project on both warehouses: one landed faker batch, loaded into DuckDB and into
Snowflake (a fakesnow server, through the real connector), built on each.

Every model and data test must pass on both, the same nodes must run, and every model
must hold the same number of rows on both. A model that works on one warehouse only
fails here. dbt's unit tests run on DuckDB alone: dbt-snowflake builds their fixtures as
``TEMPORARY`` tables named with their database, which fakesnow cannot create.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from fakesnow_db import dbt_env, new_database
from sluice.core.sources import load_source
from sluice.ingest.commit import commit_batch
from sluice.ingest.local.sync import sync_batch
from sluice.lake.storage import open_lake
from sluice.warehouse import duckdb_load, snowflake_load

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
DBT = Path(sys.executable).with_name("dbt")
BATCH = "20261120T000000Z"
WINDOW = {"SLUICE_BATCH_START": BATCH, "SLUICE_BATCH_END": "20261120T060000Z"}


def dbt_run(
    env: dict[str, str], work: Path, command: str, *args: str
) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """A dbt ``command`` (``build``, ``test`` ...); its process and the status of every node it ran."""
    env = {**os.environ, **env, **WINDOW, "DBT_TARGET_PATH": str(work / "target"), "DBT_LOG_PATH": str(work / "logs")}
    line = [str(DBT), command, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR), *args]
    proc = subprocess.run(line, env=env, capture_output=True, text=True, timeout=600)
    results = json.loads((work / "target" / "run_results.json").read_text())["results"]
    return proc, {result["unique_id"]: result["status"] for result in results}


def dbt_build(env: dict[str, str], work: Path, *args: str) -> dict[str, str]:
    """``dbt build``, which must pass; the status of every node it ran, by unique id."""
    proc, statuses = dbt_run(env, work, "build", *args)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return statuses


def model_relations(work: Path) -> list[tuple[str, str]]:
    nodes = json.loads((work / "target" / "manifest.json").read_text())["nodes"].values()
    return sorted((node["schema"], node["alias"]) for node in nodes if node["resource_type"] == "model")


@pytest.fixture(scope="module")
def builds(tmp_path_factory, fakesnow_server):
    import snowflake.connector

    work = tmp_path_factory.mktemp("both-warehouses")
    lake = open_lake(str(work / "lake"))
    source = load_source("faker")
    source = replace(source, connector_config={**source.connector_config, "count": 300})
    sync_batch(source, BATCH, lake=lake)
    for stream in source.streams:
        commit_batch(source.name, stream, BATCH, lake)

    warehouse = work / "sluice.duckdb"
    for stream in source.streams:
        duckdb_load.load_batch(source.name, stream.name, BATCH, lake, warehouse)
    duck = dbt_build({"SLUICE_WAREHOUSE": "duckdb", "SLUICE_WAREHOUSE_PATH": str(warehouse)}, work / "duckdb")

    database = new_database(fakesnow_server)
    connection = snowflake.connector.connect(**fakesnow_server, database=database, schema="BRONZE")
    for stream in source.streams:
        snowflake_load.load_batch(source.name, stream.name, BATCH, connection, lake)
    snow_env = dbt_env(fakesnow_server, database)
    snow = dbt_build(snow_env, work / "snowflake", "--exclude-resource-type", "unit_test")
    yield {
        "work": work,
        "duckdb": duck,
        "snowflake": snow,
        "warehouse": warehouse,
        "connection": connection,
        "env": {
            "duckdb": {"SLUICE_WAREHOUSE": "duckdb", "SLUICE_WAREHOUSE_PATH": str(warehouse)},
            "snowflake": snow_env,
        },
    }
    connection.close()


def test_every_model_and_test_passes_on_both_warehouses(builds):
    for target in ("duckdb", "snowflake"):
        failed = {node: status for node, status in builds[target].items() if status not in ("success", "pass")}
        assert failed == {}, target


def test_the_same_models_and_tests_run_on_both(builds):
    on_duckdb = {node for node in builds["duckdb"] if not node.startswith("unit_test.")}
    assert set(builds["snowflake"]) == on_duckdb
    assert any(node.startswith("model.sluice.revenue_per_customer") for node in on_duckdb)


def test_every_model_holds_the_same_rows_on_both(builds):
    duck = duckdb.connect(str(builds["warehouse"]), read_only=True)
    cursor = builds["connection"].cursor()
    counts = {}
    for schema, table in model_relations(builds["work"] / "duckdb"):
        (on_duckdb,) = duck.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()
        cursor.execute(f"SELECT count(*) FROM {schema}.{table}")
        (on_snowflake,) = cursor.fetchone()
        counts[f"{schema}.{table}"] = (on_duckdb, on_snowflake)
    assert all(a == b for a, b in counts.values()), counts
    assert counts["silver.customers"][0] == 300
    (revenue_duckdb,) = duck.execute("SELECT sum(gross_revenue) FROM marts.revenue_per_customer").fetchone()
    cursor.execute("SELECT sum(gross_revenue) FROM marts.revenue_per_customer")
    (revenue_snowflake,) = cursor.fetchone()
    assert float(revenue_duckdb) == pytest.approx(float(revenue_snowflake), abs=0.01)


REVENUE_AGREES = "revenue_per_customer_gross_revenue_agrees_with_fct_purchases"


def execute(builds, target: str, sql: str) -> list[tuple]:
    """``sql`` on one of the builds' warehouses (DuckDB's file is opened and closed again: dbt needs it)."""
    if target == "snowflake":
        cursor = builds["connection"].cursor()
        cursor.execute(sql)
        return cursor.fetchall()
    with duckdb.connect(str(builds["warehouse"])) as con:
        return con.execute(sql).fetchall()


@pytest.mark.parametrize("target", ["duckdb", "snowflake"])
def test_a_mart_that_disagrees_with_gold_fails_its_totals_test_and_keeps_both_totals(builds, target):
    """The ``totals_agree`` test of ``revenue_per_customer``: gross revenue against the fact table."""
    work = builds["work"] / f"{target}-totals"
    shift = "UPDATE marts.revenue_per_customer SET gross_revenue = gross_revenue {} 1000 WHERE purchases > 0"
    execute(builds, target, shift.format("+"))
    try:
        proc, statuses = dbt_run(builds["env"][target], work, "test", "--select", REVENUE_AGREES)
        assert proc.returncode == 1 and list(statuses.values()) == ["fail"], proc.stdout[-3000:]
        # the failing row stays readable in the warehouse: both totals and how far apart
        (total, compare_total, difference), *more = execute(
            builds, target, f"SELECT * FROM dbt_test__audit.{REVENUE_AGREES}"
        )
        assert not more and total > compare_total > 0
        assert difference == pytest.approx((total - compare_total) / compare_total) and difference > 0.000001
    finally:
        execute(builds, target, shift.format("-"))
    proc, statuses = dbt_run(builds["env"][target], work, "test", "--select", REVENUE_AGREES)
    assert proc.returncode == 0 and list(statuses.values()) == ["pass"], proc.stdout[-3000:]


def test_on_snowflake_an_erasure_leaves_no_row_of_the_person_in_any_layer(builds):
    """Last in this module: it deletes from the Snowflake build."""
    from sluice.core.dbt_manifest import load_manifest
    from sluice.erasure.registry import personal_tables
    from sluice.erasure.warehouse import erase_from_warehouse, residue

    tables = personal_tables(load_manifest(builds["work"] / "snowflake" / "target" / "manifest.json"))
    cursor = builds["connection"].cursor()
    cursor.execute("SELECT id, email FROM bronze.faker__users ORDER BY id LIMIT 1")
    user_id, email = cursor.fetchone()
    person = {"user_id": {str(user_id)}, "email": {email.strip().lower()}}
    held = residue(builds["connection"], tables, person)
    layers = {name.split(".")[0].lower() for name in held}
    assert {"bronze", "silver"} <= layers and len(held) >= 4, held
    cursor.execute("SELECT count(*) FROM silver.customers")
    (customers,) = cursor.fetchone()

    removed = erase_from_warehouse(builds["connection"], tables, person)
    assert {name.lower() for name in removed if removed[name]} == {name.lower() for name in held}
    assert residue(builds["connection"], tables, person) == {}
    cursor.execute("SELECT count(*) FROM silver.customers")
    assert cursor.fetchone() == (customers - 1,), "only the person's customer row"
