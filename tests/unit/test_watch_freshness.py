"""Freshness of the bronze tables against their dbt source SLA, in the warehouse (DuckDB,
fakesnow) and the lake, and a transform that does not build on stale input.
"""

from __future__ import annotations

import json
import os
import textwrap
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from watch_batch import FAKER_BATCH, StatsdReceiver, copy_faker_batch, run_dag

from environment import VENV_BIN
from sluice.checks.freshness import check_freshness, last_data_commit, model_freshness, plan, source_slas
from sluice.checks.report import report
from sluice.core.dbt_manifest import load_manifest
from sluice.core.sources import load_source
from sluice.core.thresholds import CheckConfigError

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
#: hours since the newest row of each faker table: fresh, past warn_after (6 h), past error_after (12 h)
AGES = {"faker__products": 1, "faker__purchases": 7, "faker__users": 13}
USERS_MODELS = {"stg_faker__users", "customers", "dim_customers", "revenue_per_customer"}


@pytest.fixture(scope="module")
def manifest():
    return load_manifest()


def bronze_tables(cursor, timestamp_type: str, views: bool = False) -> None:
    """The faker bronze tables, each with one row loaded ``AGES`` hours before NOW; with
    ``views``, views over the tables an Airbyte connection wrote, as Sluice makes them for
    a connection whose destination is the warehouse."""
    cursor.execute("CREATE SCHEMA IF NOT EXISTS bronze")
    schema = "airbyte_faker" if views else "bronze"
    cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for table, hours in AGES.items():
        cursor.execute(f"CREATE TABLE {schema}.{table} (id INTEGER, _airbyte_extracted_at {timestamp_type})")
        loaded = (NOW - timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S+00:00")
        cursor.execute(f"INSERT INTO {schema}.{table} VALUES (1, '{loaded}')")
        if views:
            cursor.execute(f"CREATE OR REPLACE VIEW bronze.{table} AS SELECT * FROM {schema}.{table}")


def statuses(results) -> dict[str, str]:
    return {r.table_name: r.status for r in results}


def test_the_sla_is_read_from_the_dbt_sources_in_the_manifest(manifest):
    slas = {sla.name: sla for sla in source_slas(manifest, [load_source("faker")])}
    assert set(slas) == set(AGES)
    users = slas["faker__users"]
    assert (users.warn_after, users.error_after) == (timedelta(hours=6), timedelta(hours=12))
    assert (users.relation, users.loaded_at_field, users.lake_table) == (
        "bronze.faker__users",
        "_airbyte_extracted_at",
        "bronze/faker/users",
    )
    assert users.selector == "source:faker.faker__users+"


@pytest.mark.parametrize(
    ("freshness", "message"),
    [
        (
            {"warn_after": {"count": "x", "period": "fortnight"}},
            "dbt source faker.faker__users: freshness.warn_after must be {count: <whole number above 0>,"
            " period: minute|hour|day}, not {'count': 'x', 'period': 'fortnight'}",
        ),
        ({"error_after": {"count": 0, "period": "hour"}}, "freshness.error_after must be {count: <whole number"),
        (
            {"warn_after": {"count": 2, "period": "day"}, "error_after": {"count": 1, "period": "hour"}},
            "freshness.warn_after is longer than error_after",
        ),
        ("6 hours", "freshness must be a mapping of warn_after/error_after"),
    ],
)
def test_an_sla_that_does_not_parse_is_a_clear_error(manifest, freshness, message):
    broken = json.loads(json.dumps(manifest))
    node = broken["sources"]["source.sluice.faker.faker__users"]
    node["config"]["freshness"] = node["freshness"] = freshness
    with pytest.raises(CheckConfigError) as raised:
        source_slas(broken)
    assert message in str(raised.value)


def test_an_sla_without_a_loaded_at_field_is_a_clear_error(manifest):
    broken = json.loads(json.dumps(manifest))
    node = broken["sources"]["source.sluice.faker.faker__users"]
    node["loaded_at_field"] = node["config"]["loaded_at_field"] = None
    with pytest.raises(CheckConfigError, match="faker.faker__users declares a freshness SLA but no loaded_at_field"):
        source_slas(broken)


def test_fresh_warn_and_error_on_duckdb_alert_once_per_late_table(manifest, local_lake, tmp_path, slack):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    bronze_tables(con, "TIMESTAMPTZ")
    slas, results = check_freshness(manifest, [], lake=local_lake, connection=con, now=NOW, dag_id="transform")
    assert statuses(results) == {
        "bronze.faker__products": "pass",
        "bronze.faker__purchases": "warn",
        "bronze.faker__users": "error",
    }
    users = next(r for r in results if r.table_name == "bronze.faker__users")
    assert (users.value, users.threshold, users.blocking) == (13 * 3600, 12 * 3600, True)
    assert users.detail == "warehouse: newest row loaded 13 h ago (warn after 6 h, error after 12 h)"

    outcome = report(results, lake=local_lake, connection=con)
    assert sorted(outcome.alerted) == ["freshness/bronze.faker__purchases", "freshness/bronze.faker__users"]
    assert sorted(text.splitlines()[0] for text in slack.texts()) == [
        ":rotating_light: *Table late: bronze.faker__purchases*",
        ":rotating_light: *Table late: bronze.faker__users*",
    ]
    rows = con.execute('SELECT table_name, "check", status FROM ops.batch_metrics ORDER BY 1').fetchall()
    assert rows == [
        ("bronze.faker__products", "freshness", "pass"),
        ("bronze.faker__purchases", "freshness", "warn"),
        ("bronze.faker__users", "freshness", "error"),
    ]

    verdict = plan(manifest, slas, results)
    assert list(verdict["stale"]) == ["source.sluice.faker.faker__users"]
    assert verdict["exclude"] == ["source:faker.faker__users+"]
    assert {uid.rsplit(".", 1)[1] for uid in verdict["skipped"]} == USERS_MODELS
    assert verdict["skipped"]["model.sluice.customers"] == (
        "not built on stale input: bronze.faker__users is stale: warehouse: newest row loaded 13 h ago"
        " (warn after 6 h, error after 12 h)"
    )

    # fresh again: the incidents are resolved, once
    con.execute("UPDATE bronze.faker__users SET _airbyte_extracted_at = ?", [NOW])
    con.execute("UPDATE bronze.faker__purchases SET _airbyte_extracted_at = ?", [NOW])
    _, results = check_freshness(manifest, [], lake=local_lake, connection=con, now=NOW)
    assert set(statuses(results).values()) == {"pass"}
    report(results, lake=local_lake, connection=con)
    report(results, lake=local_lake, connection=con)
    assert sorted(text.splitlines()[0] for text in slack.texts()[2:]) == [
        ":white_check_mark: *Resolved: Table late: bronze.faker__purchases*",
        ":white_check_mark: *Resolved: Table late: bronze.faker__users*",
    ]
    con.close()


@pytest.mark.parametrize("views", [False, True], ids=["tables", "views"])
def test_fresh_warn_and_error_on_snowflake(manifest, local_lake, snowflake, views):
    bronze_tables(snowflake.cursor(), "TIMESTAMP_TZ", views)
    _, results = check_freshness(manifest, [], lake=local_lake, connection=snowflake, now=NOW)
    assert statuses(results) == {
        "bronze.faker__products": "pass",
        "bronze.faker__purchases": "warn",
        "bronze.faker__users": "error",
    }
    assert [round(r.value / 3600) for r in sorted(results, key=lambda r: r.table_name)] == [1, 7, 13]
    # a built model's freshness, recorded (silver carries the load time; gold and marts do not)
    cursor = snowflake.cursor()
    cursor.execute("CREATE SCHEMA silver")
    cursor.execute("CREATE TABLE silver.customers (customer_id INTEGER, _airbyte_extracted_at TIMESTAMP_TZ)")
    cursor.execute(f"INSERT INTO silver.customers VALUES (1, '{NOW - timedelta(hours=2):%Y-%m-%d %H:%M:%S+00:00}')")
    cursor.execute("CREATE TABLE silver.products (product_id INTEGER)")
    (customers,) = model_freshness(manifest, snowflake, now=NOW)
    assert (customers.table_name, customers.value, customers.status) == ("silver.customers", 7200, "pass")


def test_a_table_never_loaded_is_an_error_that_says_so(manifest, local_lake, tmp_path):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    _, results = check_freshness(manifest, [], lake=local_lake, connection=con, now=NOW, only=["faker"])
    assert set(statuses(results).values()) == {"error"}
    assert "bronze.faker__users does not exist in the warehouse: no batch was loaded" in results[-1].detail
    with pytest.raises(CheckConfigError, match=r"dbt sources \['shop'\] declare no freshness SLA"):
        check_freshness(manifest, [], lake=local_lake, connection=con, only=["shop"])
    con.close()


def test_the_lake_is_as_fresh_as_its_last_commit_with_data(manifest, tmp_path):
    lake, _ = copy_faker_batch(tmp_path)
    committed = last_data_commit(lake, "bronze/faker/users")
    assert abs(datetime.now(UTC) - committed) < timedelta(minutes=30)
    # a rewrite that adds no data (an erasure's delete) does not make the table fresh
    table = lake.delta_table(lake.path("bronze", "faker", "users"))
    table.delete("id = 1")
    assert table.history(1)[0]["operation"] == "DELETE"
    assert last_data_commit(lake, "bronze/faker/users") == committed

    sources = [load_source("faker")]
    for hours, expected in ((1, "pass"), (7, "warn"), (13, "error")):
        _, results = check_freshness(
            manifest, sources, lake=lake, connection=None, now=committed + timedelta(hours=hours)
        )
        assert statuses(results) == {f"lake:bronze/faker/{s}": expected for s in ("users", "products", "purchases")}
    users = next(r for r in results if r.table_name == "lake:bronze/faker/users")
    assert users.detail == "lake: last commit with data 13 h ago (warn after 6 h, error after 12 h)"


STALE_DAG = '''
"""Airflow DAG: a transform on stale input (freshness, the dbt group, model freshness, as transform_dag wires them)."""
from sluice.core import config
from sluice.dag_builder import platform_dag
from sluice.transform.cosmos import dbt_task_group
from sluice.checks.operators import FreshnessCheckOperator, ModelFreshnessOperator

with platform_dag("stale_probe", doc_md="Transform on stale input.", tags=["test"], schedule=None) as dag:
    freshness = FreshnessCheckOperator(task_id="freshness", fail_on_error=False, pool=config.WAREHOUSE_POOL)
    model_freshness = ModelFreshnessOperator(
        task_id="model_freshness", pool=config.WAREHOUSE_POOL, trigger_rule="none_failed"
    )
    freshness >> dbt_task_group(freshness_task_id="freshness") >> model_freshness
'''


def test_a_stale_input_is_left_out_of_the_transform_and_the_rest_is_built(airflow_db, slack, tmp_path):
    lake, warehouse = copy_faker_batch(tmp_path / "data")
    con = duckdb.connect(str(warehouse))
    con.execute("UPDATE bronze.faker__users SET _airbyte_extracted_at = now() - INTERVAL 13 HOUR")
    con.close()
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "stale_probe.py").write_text(textwrap.dedent(STALE_DAG))
    statsd = StatsdReceiver()
    env = {
        **os.environ,
        **statsd.environment(),
        "SLUICE_LAKE_ROOT": str(tmp_path / "data" / "lake"),
        "SLUICE_WAREHOUSE_PATH": str(warehouse),
    }
    # DAG.test runs the interval that ends at its logical date: the faker batch's
    start = datetime.strptime(FAKER_BATCH, "%Y%m%dT%H%M%SZ") + timedelta(hours=6)
    try:
        (run,), output = run_dag(VENV_BIN / "python", env, dags, "stale_probe", [start], tmp_path)
    finally:
        statsd.stop()
    tasks = run.tasks
    assert run.state == "success", output[-4000:]
    assert tasks["freshness"] == "success" and tasks["dbt.dbt_producer_watcher"] == "success"
    for model in USERS_MODELS:
        assert tasks[f"dbt.{model}.run"] == "skipped", (model, tasks)
    for model in ("stg_faker__purchases", "purchases", "stg_faker__products", "dim_products", "fct_purchases"):
        assert tasks[f"dbt.{model}.run"] == "success" and tasks[f"dbt.{model}.test"] == "success", (model, tasks)
    assert tasks["model_freshness"] == "success"
    assert "'--exclude', 'resource_type:unit_test source:faker.faker__users+'" in output
    assert "not built on stale input: bronze.faker__users is stale: warehouse: newest row loaded 13 h" in output

    con = duckdb.connect(str(warehouse), read_only=True)
    built = {
        row[0]
        for row in con.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables").fetchall()
    }
    freshness = con.execute(
        "SELECT table_name, status FROM ops.batch_metrics WHERE \"check\" = 'freshness' AND dag_id = 'stale_probe'"
    ).fetchall()
    con.close()
    assert {"gold.fct_purchases", "silver.purchases"} <= built
    assert not {"silver.customers", "gold.dim_customers", "marts.revenue_per_customer"} & built
    assert ("bronze.faker__users", "error") in freshness and ("lake:bronze/faker/users", "pass") in freshness
    assert ("silver.purchases", "pass") in freshness  # a built model's freshness, recorded
    # one incident for the table, its lake copy fresh: the warehouse's lag is what broke
    (alert,) = slack.texts()
    assert alert.startswith(":rotating_light: *Table late: bronze.faker__users*")
    assert "*What broke:* warehouse: newest row loaded 13 h" in alert and "*DAG* `stale_probe`" in alert
    lag = statsd.values("airflow.sluice.freshness_lag_seconds.bronze.faker__users")
    assert float(next(iter(lag.values())).split("|")[0]) > 13 * 3600 - 60
    assert "airflow.sluice.freshness_lag_seconds.lake.bronze.faker.users" in statsd.values("airflow.sluice.")


PG_DAG = '''
"""Airflow DAG: the faker tables' freshness measured through a PostgreSQL connection."""
from sluice.core import config
from sluice.dag_builder import platform_dag
from sluice.checks.operators import FreshnessCheckOperator

with platform_dag("pg_freshness", doc_md="Freshness through PostgreSQL.", tags=["test"], schedule=None) as dag:
    FreshnessCheckOperator(
        task_id="freshness", conn_id="tables_pg", sources=["faker"], fail_on_error=False, pool=config.WAREHOUSE_POOL
    )
'''


def postgres_connection(postgres) -> str:
    """The Airflow connection (JSON) to the session's PostgreSQL server."""
    return json.dumps({"conn_type": "postgres", "host": str(postgres.folder), "login": "airflow", "schema": "airflow"})


def test_freshness_is_measured_through_any_sql_connection_here_postgresql(postgres, airflow_db, slack, tmp_path):
    import psycopg2

    pg = psycopg2.connect(host=str(postgres.folder), user="airflow", dbname="airflow")
    pg.autocommit = True
    cursor = pg.cursor()
    cursor.execute("DROP SCHEMA IF EXISTS bronze CASCADE; CREATE SCHEMA bronze")
    for table, hours in AGES.items():
        cursor.execute(f"CREATE TABLE bronze.{table} (id INTEGER, _airbyte_extracted_at TIMESTAMPTZ)")
        cursor.execute(f"INSERT INTO bronze.{table} VALUES (1, now() - interval '{hours} hours')")
    pg.close()
    # the platform's own warehouse and lake hold a fresh faker batch: only PostgreSQL has late tables
    lake, warehouse = copy_faker_batch(tmp_path / "data")
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "pg_freshness.py").write_text(textwrap.dedent(PG_DAG))
    env = {
        **os.environ,
        "AIRFLOW_CONN_TABLES_PG": postgres_connection(postgres),
        "SLUICE_LAKE_ROOT": str(tmp_path / "data" / "lake"),
        "SLUICE_WAREHOUSE_PATH": str(warehouse),
    }
    (run,), output = run_dag(VENV_BIN / "python", env, dags, "pg_freshness", [NOW], tmp_path)
    assert run.state == "success" and run.tasks["freshness"] == "success", output[-4000:]

    con = duckdb.connect(str(warehouse), read_only=True)
    recorded = con.execute(
        "SELECT table_name, status, round(value / 3600) FROM ops.batch_metrics"
        " WHERE dag_id = 'pg_freshness' AND \"check\" = 'freshness' ORDER BY 1"
    ).fetchall()
    con.close()
    assert recorded == [
        ("bronze.faker__products", "pass", 1),
        ("bronze.faker__purchases", "warn", 7),
        ("bronze.faker__users", "error", 13),
        ("lake:bronze/faker/products", "pass", 0),
        ("lake:bronze/faker/purchases", "pass", 0),
        ("lake:bronze/faker/users", "pass", 0),
    ]
    assert sorted(text.splitlines()[0] for text in slack.texts()) == [
        ":rotating_light: *Table late: bronze.faker__purchases*",
        ":rotating_light: *Table late: bronze.faker__users*",
    ]
    assert "Left out of the build (source:faker.faker__users+)" in output


def test_a_connection_without_sql_or_unreachable_is_a_clear_error(postgres, monkeypatch):
    from sluice.warehouse.snowflake_hook import WarehouseAccessError
    from sluice.warehouse.tables import sql_connection

    monkeypatch.setenv("AIRFLOW_CONN_NOT_SQL", json.dumps({"conn_type": "http", "host": "example.invalid"}))
    with pytest.raises(ValueError, match="'not_sql' is of type 'http', which has no SQL hook"):
        sql_connection("not_sql")
    gone = json.loads(postgres_connection(postgres)) | {"schema": "no_such_database"}
    monkeypatch.setenv("AIRFLOW_CONN_GONE", json.dumps(gone))
    with pytest.raises(
        WarehouseAccessError,
        match="cannot connect through the Airflow connection 'gone' .postgres.: .*no_such_database",
    ):
        sql_connection("gone")
    monkeypatch.setenv("AIRFLOW_CONN_REACHABLE", postgres_connection(postgres))
    connection = sql_connection("reachable")
    cursor = connection.cursor()
    cursor.execute("SELECT current_database()")
    assert cursor.fetchone() == ("airflow",)
    connection.close()
