"""Check results in the warehouse, ``ops.batch_metrics``: the same rows as the lake's
``ops/check_results``, where analysts and BI tools query them beside the data.

One row per figure (the columns of :class:`~sluice.watch.results.CheckResult`). A rerun
of a batch's check replaces that batch's rows of the same (table, check). ``check`` is
a reserved word in SQL: quote it (``"check"`` on DuckDB, ``"CHECK"`` on Snowflake).
On the embedded DuckDB warehouse, tasks writing here take the warehouse pool.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from sluice.watch.results import CheckResult

log = logging.getLogger(__name__)

SCHEMA, TABLE = "ops", "batch_metrics"
#: column -> (DuckDB type, Snowflake type)
COLUMN_TYPES = {
    "checked_at": ("TIMESTAMPTZ", "TIMESTAMP_TZ"),
    "value": ("DOUBLE", "FLOAT"),
    "threshold": ("DOUBLE", "FLOAT"),
    "blocking": ("BOOLEAN", "BOOLEAN"),
}


def warehouse_kind(connection: Any) -> str:
    """``duckdb`` or ``snowflake``: which warehouse a DB-API connection reaches."""
    return "duckdb" if "duckdb" in type(connection).__module__ else "snowflake"


def quoted(name: str, kind: str) -> str:
    """A column quoted as ``kind``'s warehouse folds an unquoted one (upper case on Snowflake),
    so that quoted and unquoted references meet (and ``check``, a reserved word, is usable)."""
    if kind == "snowflake":
        from sluice.warehouse.snowflake_load import ident

        return ident(name)
    return '"' + name.replace('"', '""') + '"'


def quote_column(name: str, connection: Any) -> str:
    """A column of the warehouse ``connection`` reaches, quoted (see :func:`quoted`)."""
    return quoted(name, warehouse_kind(connection))


def create_table(cursor: Any, kind: str) -> None:
    columns = ", ".join(
        f"{quoted(field.name, kind)} {COLUMN_TYPES.get(field.name, ('VARCHAR', 'VARCHAR'))[kind == 'snowflake']}"
        for field in dataclasses.fields(CheckResult)
    )
    # a Snowflake role may create tables in ops (include/snowflake/setup.sql) but no schema
    cursor.execute(f"SELECT count(*) FROM information_schema.schemata WHERE lower(schema_name) = '{SCHEMA}'")
    if not cursor.fetchone()[0]:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{TABLE} ({columns})")


def write_batch_metrics(connection: Any, results: Sequence[CheckResult]) -> int:
    """Replace, in one transaction, the rows of the same (dag, batch, table, check) with
    ``results``; the rows written.

    :param connection: a DB-API connection to the warehouse
        (:func:`sluice.warehouse.tables.warehouse_connection`)
    """
    if not results:
        return 0
    kind = warehouse_kind(connection)
    mark = "?" if kind == "duckdb" else "%s"
    names = [field.name for field in dataclasses.fields(CheckResult)]
    column = {name: quoted(name, kind) for name in names}
    cursor = connection.cursor()
    try:
        create_table(cursor, kind)
        cursor.execute("BEGIN")
        groups = sorted({(r.dag_id, r.batch, r.table_name, r.check) for r in results})
        for dag_id, batch, table_name, check in groups:
            cursor.execute(
                f"DELETE FROM {SCHEMA}.{TABLE} WHERE {column['dag_id']} = {mark} AND {column['batch']} = {mark}"
                f" AND {column['table_name']} = {mark} AND {column['check']} = {mark}",
                (dag_id, batch, table_name, check),
            )
        cursor.executemany(
            f"INSERT INTO {SCHEMA}.{TABLE} ({', '.join(column.values())}) VALUES ({', '.join(mark for _ in names)})",
            [tuple(getattr(result, name) for name in names) for result in results],
        )
        cursor.execute("COMMIT")
    except Exception:
        try:
            cursor.execute("ROLLBACK")
        except Exception:  # the original error says more
            log.debug("rollback failed", exc_info=True)
        raise
    finally:
        cursor.close()
    return len(results)
