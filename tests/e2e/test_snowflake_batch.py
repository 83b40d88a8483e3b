"""A batch end to end with the warehouse on Snowflake (a fakesnow server, real connector).

``SLUICE_WAREHOUSE=snowflake`` and an Airflow connection are all that change: the same
DAG files land the batch, load bronze through the Snowflake hook (PUT and COPY INTO),
and Cosmos builds the dbt project with a profile made from the same connection.
"""

from __future__ import annotations

import json
import subprocess

import pyarrow as pa
import pytest

from e2e.one_day import run_batch
from e2e.snapshot import LAYERS, comparable_rows, pinned_environment
from environment import VENV_BIN, isolated_environment
from fakesnow_db import airflow_connection, new_database

pytestmark = pytest.mark.e2e
BATCH = "20261120T000000Z"


@pytest.fixture(scope="module")
def snowflake_batch(tmp_path_factory, fakesnow_server):
    import snowflake.connector

    database = new_database(fakesnow_server)
    connection = airflow_connection(fakesnow_server, database)
    tmp_path = tmp_path_factory.mktemp("snowflake-batch")
    env = {
        **pinned_environment(isolated_environment(tmp_path / "airflow", tmp_path / "data")),
        "SLUICE_WAREHOUSE": "snowflake",
        "AIRFLOW_CONN_SNOWFLAKE_DEFAULT": json.dumps(connection),
        # fakesnow cannot create the schema-qualified temporary table an incremental
        # rerun stages into (dbt_project.yml)
        "SLUICE_DBT_TMP_RELATION_TYPE": "transient",
    }
    subprocess.run([VENV_BIN / "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    output = run_batch(env, "2026-11-20T00:00")
    reader = snowflake.connector.connect(**fakesnow_server, database=database)
    yield output, reader, tmp_path, env
    reader.close()


def tables(connection) -> dict[str, list[tuple]]:
    """Every table of every schema (fakesnow lists no views there), rows compared as the lake
    snapshots compare them."""
    cursor = connection.cursor()
    cursor.execute(
        "SELECT lower(table_schema), lower(table_name) FROM information_schema.tables"
        " WHERE lower(table_schema) NOT IN ('information_schema', 'pg_catalog')"
    )
    contents = {}
    for schema, table in sorted(cursor.fetchall()):
        cursor.execute(f"SELECT * FROM {schema}.{table}")
        names = [column[0].lower() for column in cursor.description]
        rows = pa.Table.from_pylist([dict(zip(names, row, strict=True)) for row in cursor.fetchall()])
        contents[f"{schema}.{table}"] = comparable_rows(rows, f"warehouse:{schema}.{table}")
    return contents


def count(connection, table: str, where: str = "true") -> int:
    cursor = connection.cursor()
    cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}")
    return cursor.fetchone()[0]


def test_a_batch_lands_in_snowflake_bronze_and_dbt_builds_every_layer_there(snowflake_batch):
    output, snowflake, tmp_path, env = snowflake_batch
    assert "ingest_faker            success" in output and "transform               success" in output
    assert "faker__users 1,000" in output and "Warehouse: Snowflake, Airflow connection snowflake_default" in output
    for stream, rows in (("users", 1000), ("products", 100), ("purchases", 1000)):
        assert count(snowflake, f"bronze.faker__{stream}", f"_sluice_batch = '{BATCH}'") == rows
    assert count(snowflake, "silver.customers") == 1000
    assert count(snowflake, "gold.dim_products") == 100
    assert count(snowflake, "marts.revenue_per_customer") == 1000
    assert count(snowflake, "gold.fct_purchases") == count(snowflake, "silver.purchases") > 0
    assert not (tmp_path / "data" / "warehouse" / "sluice.duckdb").exists(), "nothing went to DuckDB"


def test_rerunning_the_batch_leaves_identical_tables_in_snowflake(snowflake_batch):
    _, snowflake, _, env = snowflake_batch
    before = tables(snowflake)
    assert len(before) >= 10 and all(rows for name, rows in before.items() if name.split(".")[0] in LAYERS)
    assert "ops.batch_metrics" in before  # the check results too
    run_batch(env, "2026-11-20T00:00")
    after = tables(snowflake)
    assert [name for name in before if before[name] != after.get(name)] == []
