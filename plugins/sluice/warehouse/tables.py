"""Names of the warehouse's tables, the same on every warehouse, and a connection to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def warehouse_table(source: str, stream: str) -> str:
    """The bronze table of a source stream: ``<source>__<stream>``."""
    return f"{source}__{stream}"


def warehouse_connection(warehouse: Path | None = None) -> Any:
    """A DB-API connection to ``SLUICE_WAREHOUSE``'s warehouse (``warehouse``: another
    DuckDB file than the configured one)."""
    from sluice import config

    if config.warehouse() == "snowflake":
        from sluice.warehouse.snowflake_hook import snowflake_connection

        return snowflake_connection()
    from sluice.warehouse.duckdb_load import connect

    # not read-only: in the process that just ran dbt, dbt-duckdb still holds the file
    # read-write, and DuckDB opens one file with one configuration per process
    return connect(warehouse)
