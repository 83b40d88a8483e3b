"""The warehouse Sluice loads, checks and erases in, chosen once from ``SLUICE_WAREHOUSE``.

What differs between DuckDB and Snowflake (how to connect, quote a name, mark a
parameter, name a column type, load a batch, reclaim erased rows' storage) is a method
here; no other module asks which warehouse it is on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sluice.core import config

#: portable column kinds -> each warehouse's type
_TYPES = {
    "duckdb": {"timestamp": "TIMESTAMPTZ", "double": "DOUBLE", "boolean": "BOOLEAN", "text": "VARCHAR"},
    "snowflake": {"timestamp": "TIMESTAMP_TZ", "double": "FLOAT", "boolean": "BOOLEAN", "text": "VARCHAR"},
}


class Warehouse:
    """One warehouse's dialect and operations."""

    name: str
    #: the DB-API parameter marker of its driver
    mark: str
    #: Airbyte destination types that write into this warehouse
    airbyte_destinations: tuple[str, ...] = ()

    def connect(self, path: Path | None = None) -> Any:
        """An open DB-API connection (``path``: another DuckDB file than the configured one)."""
        raise NotImplementedError

    def quote(self, name: str) -> str:
        """A name quoted as the warehouse folds an unquoted one, so quoted and unquoted
        references meet (and reserved words such as ``check`` are usable)."""
        return '"' + name.replace('"', '""') + '"'

    def sql_type(self, kind: str) -> str:
        """The warehouse's type for a portable kind (timestamp, double, boolean, text)."""
        return _TYPES[self.name][kind]

    def load_batch(self, source: str, stream: str, batch: str) -> dict[str, Any]:
        """Replace ``batch`` in ``bronze.<source>__<stream>`` with the lake table's partition."""
        raise NotImplementedError

    def dbt_profile(self) -> dict[str, Any]:
        """Cosmos ``ProfileConfig`` arguments (besides the profile name) that reach this warehouse."""
        raise NotImplementedError

    def compact(self) -> None:
        """Reclaim the storage of deleted rows after an erasure, where the warehouse keeps
        them in its own files (DuckDB); nothing where it does not."""


class DuckDB(Warehouse):
    name, mark = "duckdb", "?"

    def connect(self, path: Path | None = None) -> Any:
        from sluice.warehouse.duckdb_load import connect

        # not read-only: in the process that just ran dbt, dbt-duckdb still holds the file
        # read-write, and DuckDB opens one file with one configuration per process
        return connect(path)

    def load_batch(self, source: str, stream: str, batch: str) -> dict[str, Any]:
        from sluice.warehouse.duckdb_load import load_batch

        return load_batch(source, stream, batch)

    def dbt_profile(self) -> dict[str, Any]:
        return {"target_name": "duckdb", "profiles_yml_filepath": config.dbt_project_dir() / "profiles.yml"}

    def compact(self) -> None:
        from sluice.warehouse.duckdb_load import compact_duckdb

        compact_duckdb(config.warehouse_path())


class Snowflake(Warehouse):
    name, mark = "snowflake", "%s"
    airbyte_destinations = ("snowflake",)

    def connect(self, path: Path | None = None) -> Any:
        from sluice.warehouse.snowflake_hook import snowflake_connection

        return snowflake_connection()

    def quote(self, name: str) -> str:
        from sluice.warehouse.snowflake_load import ident

        return ident(name)

    def dbt_profile(self) -> dict[str, Any]:
        from sluice.warehouse.snowflake_profile import snowflake_profile_mapping

        return {"target_name": "snowflake", "profile_mapping": snowflake_profile_mapping(config.snowflake_conn_id())}

    def load_batch(self, source: str, stream: str, batch: str) -> dict[str, Any]:
        from sluice.warehouse.snowflake_load import load_batch

        connection = self.connect()
        try:
            return load_batch(source, stream, batch, connection)
        finally:
            connection.close()


WAREHOUSES: dict[str, type[Warehouse]] = {"duckdb": DuckDB, "snowflake": Snowflake}


def current() -> Warehouse:
    """The configured warehouse (``SLUICE_WAREHOUSE``: duckdb, the default, or snowflake)."""
    return WAREHOUSES[config.warehouse()]()


def warehouse_connection(warehouse: Path | None = None) -> Any:
    """A DB-API connection to the configured warehouse (``warehouse``: another DuckDB file)."""
    return current().connect(warehouse)
