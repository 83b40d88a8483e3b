"""Batches on the production configuration: an Airbyte server's sync, the lake on S3,
the warehouse on Snowflake; and a connection that writes straight into Snowflake.

The Airbyte stand-in syncs the faker records into radosgw as Airbyte's S3 destination
writes them; the same DAG files trigger and wait for the sync, register the job's files
in the Delta bronze tables on radosgw, load them into fakesnow, and Cosmos builds the
dbt project there.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from airbyte_faker import airbyte_include, faker_streams, s3_connection, snowflake_connection
from airbyte_standin import AirbyteStandin

from e2e.one_day import run_batch
from e2e.test_snowflake_batch import count
from environment import VENV_BIN, declared_sources, isolated_environment
from fakesnow_db import airflow_connection, new_database

pytestmark = [pytest.mark.e2e, pytest.mark.s3]
BATCH = "20261120T000000Z"
CONNECTION_ID = "3c1e7a52-8f0b-4d4e-a0a1-6d2f2b9c4e10"


@pytest.fixture(scope="module")
def production_batch(tmp_path_factory, radosgw, fakesnow_server):
    import snowflake.connector

    from sluice.lake.storage import open_lake

    tmp_path = tmp_path_factory.mktemp("airbyte-batch")
    root = f"s3://{radosgw.new_bucket()}/lake"
    standin = AirbyteStandin(env={**isolated_environment(tmp_path / "standin", tmp_path / "standin"), **radosgw.env})
    streams = faker_streams()
    # Airbyte retried the sync: the failed first attempt left part files with the job's sync id
    connection = {**s3_connection(root, radosgw.endpoint, streams), "failed_attempts": 1, "part_rows": 400}
    standin.setup(connections={CONNECTION_ID: connection})
    database = new_database(fakesnow_server)
    env = {
        **isolated_environment(tmp_path / "airflow", tmp_path / "data"),
        **radosgw.env,
        "SLUICE_LAKE_ROOT": root,
        "SLUICE_AWS_CONN_ID": "sluice_tests_no_such_connection",  # the environment's keys
        **declared_sources(tmp_path, ["faker"], airbyte_include(tmp_path / "include", CONNECTION_ID)),
        "AIRFLOW_CONN_AIRBYTE_DEFAULT": json.dumps(
            {"conn_type": "airbyte", "host": standin.url, "login": "sluice", "password": "secret"}
        ),
        "SLUICE_WAREHOUSE": "snowflake",
        "AIRFLOW_CONN_SNOWFLAKE_DEFAULT": json.dumps(airflow_connection(fakesnow_server, database)),
        # fakesnow reads no S3 stage: the lake's files are uploaded to an internal one
        "SLUICE_SNOWFLAKE_STAGE_TYPE": "internal",
        "SLUICE_DBT_TMP_RELATION_TYPE": "transient",
    }
    subprocess.run([VENV_BIN / "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    output = run_batch(env, "2026-11-20T00:00")
    reader = snowflake.connector.connect(**fakesnow_server, database=database)
    lake = _lake(open_lake, root, radosgw.env)
    yield {"output": output, "snowflake": reader, "standin": standin, "env": env, "lake": lake, "streams": streams}
    reader.close()
    standin.close()


def _lake(open_lake, root, aws_env):
    import os

    saved = {name: os.environ.get(name) for name in aws_env}
    os.environ.update(aws_env)
    os.environ["SLUICE_AWS_CONN_ID"] = "sluice_tests_no_such_connection"
    try:
        return open_lake(root)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def test_an_airbyte_sync_into_the_s3_lake_becomes_bronze_and_every_dbt_layer_on_snowflake(production_batch):
    from sluice.ingest.landing import read_manifest
    from sluice.lake.files import active_files

    output, snowflake, standin, lake = (production_batch[k] for k in ("output", "snowflake", "standin", "lake"))
    assert "ingest_faker            success" in output and "transform               success" in output
    (job,) = standin.jobs
    expected = {name: len(stream["records"]) for name, stream in production_batch["streams"].items()}
    failed = {name: rows // 2 for name, rows in expected.items()}  # what the failed attempt wrote
    assert job["status"] == "succeeded" and job["rowsSynced"] == sum(expected.values()) == 2100
    for stream, rows in expected.items():
        manifest = read_manifest(lake, "faker", stream, BATCH)
        assert manifest["landed"] == rows and manifest["attempt"] == f"airbyte-job-{job['jobId']}"
        assert manifest["airbyte_attempt"] == 1 and len(manifest["files"]) == -(-rows // 400)
        earlier = manifest["airbyte_earlier_attempt_files"]
        assert len(earlier) == -(-failed[stream] // 400) and all(lake.exists(lake.path(name)) for name in earlier)
        table = lake.delta_table(lake.path("bronze", "faker", stream))
        # registered where Airbyte's S3 destination wrote them: nothing copied, nothing of the failed attempt
        assert {f"bronze/faker/{stream}/{path}" for path in active_files(table, BATCH)} == set(manifest["files"])
        assert all(path.startswith("airbyte/") for path in active_files(table, BATCH))
        assert count(snowflake, f"bronze.faker__{stream}", f"_sluice_batch = '{BATCH}'") == rows
    assert count(snowflake, "silver.customers") == expected["users"]
    assert count(snowflake, "gold.dim_products") == expected["products"]
    assert count(snowflake, "marts.revenue_per_customer") == expected["users"]
    assert count(snowflake, "gold.fct_purchases") == count(snowflake, "silver.purchases") > 0


def test_rerunning_the_batch_takes_the_same_job_again_without_a_second_sync(production_batch):
    from sluice.ingest.landing import read_manifest

    lake, standin, snowflake = production_batch["lake"], production_batch["standin"], production_batch["snowflake"]
    before = read_manifest(lake, "faker", "purchases", BATCH)["files"]
    assert "ingest_faker            success" in run_batch(
        production_batch["env"], "2026-11-20T00:00", "--dag", "ingest_faker"
    )
    assert len(standin.jobs) == 1
    assert [r for r in standin.requests if r["method"] == "POST" and r["path"] == "/v1/jobs"] == [
        {"method": "POST", "path": "/v1/jobs", "query": "", "status": 200}
    ]
    assert read_manifest(lake, "faker", "purchases", BATCH)["files"] == before
    assert count(snowflake, "bronze.faker__purchases", f"_sluice_batch = '{BATCH}'") == len(
        production_batch["streams"]["purchases"]["records"]
    )


@pytest.fixture(scope="module")
def warehouse_batch(tmp_path_factory, fakesnow_server):
    """The faker source through a connection whose destination is Snowflake itself."""
    import snowflake.connector

    tmp_path = tmp_path_factory.mktemp("airbyte-warehouse-batch")
    database = new_database(fakesnow_server)
    standin = AirbyteStandin()
    streams = faker_streams()
    standin.setup(connections={CONNECTION_ID: snowflake_connection(fakesnow_server, database, streams)})
    env = {
        **isolated_environment(tmp_path / "airflow", tmp_path / "data"),
        **declared_sources(
            tmp_path, ["faker"], airbyte_include(tmp_path / "include", CONNECTION_ID, destination="warehouse")
        ),
        "AIRFLOW_CONN_AIRBYTE_DEFAULT": json.dumps(
            {"conn_type": "airbyte", "host": standin.url, "login": "sluice", "password": "secret"}
        ),
        "SLUICE_WAREHOUSE": "snowflake",
        "AIRFLOW_CONN_SNOWFLAKE_DEFAULT": json.dumps(airflow_connection(fakesnow_server, database)),
        "SLUICE_DBT_TMP_RELATION_TYPE": "transient",
    }
    subprocess.run([VENV_BIN / "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    output = run_batch(env, "2026-11-20T00:00")
    reader = snowflake.connector.connect(**fakesnow_server, database=database)
    yield output, reader, streams, tmp_path
    reader.close()
    standin.close()


def test_a_connection_into_snowflake_feeds_the_dbt_layers_through_bronze_views(warehouse_batch):
    output, snowflake, streams, tmp_path = warehouse_batch
    assert "ingest_faker            success" in output and "transform               success" in output
    expected = {name: len(stream["records"]) for name, stream in streams.items()}
    for stream, rows in expected.items():
        assert count(snowflake, f"airbyte_faker.{stream}") == rows, "Airbyte's own table, read in place"
        assert count(snowflake, f"bronze.faker__{stream}", f"_sluice_batch = '{BATCH}'") == rows
    assert count(snowflake, "silver.customers") == expected["users"]
    assert count(snowflake, "marts.revenue_per_customer") == expected["users"]
    assert not list((tmp_path / "data" / "lake").glob("bronze/**/*.parquet")), "no lake copy in this mode"
    # the batch measured where it is: in Snowflake, held to the faker thresholds
    cursor = snowflake.cursor()
    cursor.execute(
        "SELECT table_name, \"CHECK\" || '/' || metric, value, status FROM ops.batch_metrics"
        f" WHERE dag_id = 'ingest_faker' AND batch = '{BATCH}'"
    )
    figures = {(table, metric): (value, status) for table, metric, value, status in cursor.fetchall()}
    for stream, rows in expected.items():
        table = f"bronze.faker__{stream}"
        assert figures[(table, "volume/row_count")] == (rows, "pass")
        assert figures[(table, "uniqueness/duplicate_keys")] == (0, "pass")
        assert figures[(table, "validity/changed_rate")] == (0, "pass")
        assert (table, "timeliness/landing_latency_seconds") in figures
    assert figures[("bronze.faker__users", "completeness/null_rate:email")] == (0, "pass")
