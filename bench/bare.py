"""The bare work of batches: what the tools themselves take, without the platform.

Per 6-hour interval, the connector's read of the declared faker source (``source-faker
read --config C --catalog K > /dev/null``) and one ``dbt build`` of ``dbt_project/``
in a fresh process, with that interval as the dbt vars. dbt builds against a new
DuckDB file holding a copy of the bronze tables the platform loaded, and nothing
that dbt makes: the state the platform's transform started from.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from common import ROOT, VENV_PYTHON, checked_run, faker_source, make_env, time_raw_read, write_read_inputs

from sluice.core.batch import batch_id

INTERVAL = timedelta(hours=6)
DBT = VENV_PYTHON.parent / "dbt"
DBT_PROJECT = ROOT / "dbt_project"


def intervals(start: datetime, count: int) -> list[tuple[str, str]]:
    """``count`` consecutive intervals from ``start``, as (batch id, id of its end)."""
    return [(batch_id(start + i * INTERVAL), batch_id(start + (i + 1) * INTERVAL)) for i in range(count)]


def bronze_copy(warehouse: Path, target: Path) -> dict[str, int]:
    """A new DuckDB file at ``target`` with the bronze tables of ``warehouse``; rows per table.

    Only base tables of schema ``bronze`` are copied (the platform's loads); the
    staging views and the silver, gold and mart tables are dbt's to make.
    """
    import duckdb

    target.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(target))
    try:
        con.execute(f"ATTACH '{warehouse}' AS platform (READ_ONLY)")
        tables = [
            name
            for (name,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'platform' AND schema_name = 'bronze'"
            ).fetchall()
        ]
        con.execute("CREATE SCHEMA bronze")
        rows = {}
        for name in sorted(tables):
            con.execute(f'CREATE TABLE bronze."{name}" AS SELECT * FROM platform.bronze."{name}"')
            (rows[name],) = con.execute(f'SELECT count(*) FROM bronze."{name}"').fetchone()
        con.execute("DETACH platform")
    finally:
        con.close()
    return rows


def time_dbt_build(warehouse: Path, batch_start: str, batch_end: str, work: Path) -> float:
    """Wall seconds of one ``dbt build`` of the project on ``warehouse`` for one interval.

    Its target and log folders are under ``work``, so the project's own
    ``target/manifest.json`` is left alone.
    """
    env = {
        **make_env(),
        "SLUICE_WAREHOUSE_PATH": str(warehouse),
        "DBT_TARGET_PATH": str(work / "target"),
        "DBT_LOG_PATH": str(work / "logs"),
    }
    dbt_vars = json.dumps({"batch_start": batch_start, "batch_end": batch_end})
    command = [DBT, "build", "--profiles-dir", DBT_PROJECT, "--target", "duckdb", "--vars", dbt_vars]
    return checked_run(command, env, work / f"dbt-build-{batch_start}.log", cwd=DBT_PROJECT, timeout=900)


def bare_work(batches: list[tuple[str, str]], warehouse: Path, work: Path) -> dict[str, Any]:
    """Per interval, in order: the bare connector read, then one bare ``dbt build``.

    ``warehouse`` is the platform's, after it loaded every interval of ``batches``;
    the builds run one after the other on one copy of its bronze tables, as the
    platform's transform runs did.
    """
    from sluice.ingest.local.protocol import connector_executable

    source = faker_source()
    config, catalog = write_read_inputs(source, work / "read")
    executable = connector_executable(source.connector)
    copy = work / "warehouse" / "bare.duckdb"
    bronze_rows = bronze_copy(warehouse, copy)
    per_interval = []
    for start, end in batches:
        read = time_raw_read(executable, config, catalog)
        build = time_dbt_build(copy, start, end, work)
        per_interval.append({"batch": start, "read_seconds": read, "dbt_build_seconds": build})
    return {
        "seconds": sum(i["read_seconds"] + i["dbt_build_seconds"] for i in per_interval),
        "read_seconds": sum(i["read_seconds"] for i in per_interval),
        "dbt_build_seconds": sum(i["dbt_build_seconds"] for i in per_interval),
        "per_interval": per_interval,
        "bronze_rows": bronze_rows,
        "faker_count": source.connector_config.get("count"),
    }
