"""The Snowflake path through fakesnow, side by side with DuckDB on the same batch.

One faker batch is landed and committed to a local lake, then loaded into DuckDB and into
a fakesnow server (real connector: PUT and COPY INTO), and the dbt project is built on
each. fakesnow runs Snowflake's SQL on DuckDB in this process, so the figures prove the
path and catch regressions; they say nothing of Snowflake's own speed.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from bare import DBT, DBT_PROJECT
from common import BATCH, checked_run, faker_source, make_env

from sluice.ingest.commit import commit_batch
from sluice.ingest.local.protocol import connector_executable
from sluice.ingest.local.sync import stored_catalog, sync_batch
from sluice.lake.storage import open_lake
from sluice.warehouse import duckdb_load, snowflake_load

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fakesnow_db import dbt_env, new_database

WINDOW = {"batch_start": BATCH, "batch_end": "20261120T060000Z"}


def time_dbt_build(env: dict[str, str], work: Path) -> float:
    """One ``dbt build`` of the project for the batch's window (dbt's unit tests left out,
    as the platform's builds leave them out)."""
    env = {**make_env(), **env, "DBT_TARGET_PATH": str(work / "target"), "DBT_LOG_PATH": str(work / "logs")}
    command = [DBT, "build", "--profiles-dir", DBT_PROJECT, "--vars", json.dumps(WINDOW)]
    command += ["--exclude-resource-type", "unit_test"]
    return checked_run(command, env, work / "dbt-build.log", cwd=DBT_PROJECT, timeout=1800)


def bench_snowflake(count: int = 100_000) -> dict[str, Any]:
    import fakesnow
    import snowflake.connector

    source = faker_source(count)
    with tempfile.TemporaryDirectory(prefix="sluice-bench-snowflake-") as tmp:
        work = Path(tmp)
        lake = open_lake(str(work / "lake"))
        stored_catalog(source, connector_executable(source.connector), source.connector_config, lake)
        manifests = sync_batch(source, BATCH, lake=lake)
        for stream in source.streams:
            commit_batch(source.name, stream, BATCH, lake)
        rows = sum(manifest["landed"] for manifest in manifests.values())

        warehouse = work / "sluice.duckdb"
        start = time.perf_counter()
        for stream in source.streams:
            duckdb_load.load_batch(source.name, stream.name, BATCH, lake, warehouse)
        duckdb_load_s = time.perf_counter() - start
        duckdb_build_s = time_dbt_build(
            {"SLUICE_WAREHOUSE": "duckdb", "SLUICE_WAREHOUSE_PATH": str(warehouse)}, work / "duckdb"
        )

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fakesnow.server() as server:
                database = new_database(server)
                connection = snowflake.connector.connect(**server, database=database, schema="BRONZE")
                start = time.perf_counter()
                for stream in source.streams:
                    snowflake_load.load_batch(source.name, stream.name, BATCH, connection, lake)
                snowflake_load_s = time.perf_counter() - start
                snowflake_env = dbt_env(server, database)
                snowflake_build_s = time_dbt_build(snowflake_env, work / "snowflake")
                connection.close()
    return {
        "snowflake_load_rows_per_s": rows / snowflake_load_s,
        "snowflake_load_seconds": snowflake_load_s,
        "snowflake_duckdb_load_rows_per_s": rows / duckdb_load_s,
        "dbt_build_snowflake_vs_duckdb_ratio": snowflake_build_s / duckdb_build_s,
        "snowflake_dbt_build_seconds": snowflake_build_s,
        "snowflake_duckdb_dbt_build_seconds": duckdb_build_s,
        "snowflake_rows": rows,
        "snowflake_faker_count": count,
    }
