"""Erase people from every warehouse table that holds them, every layer, DuckDB or Snowflake.

Each declared table (bronze loads, dbt models of every layer; views are erased through
the tables they read) loses the rows whose identifier columns hold one of the people's
identifiers, compared as the index compares them (emails without case and blanks).

A DELETE only marks rows: DuckDB keeps their bytes in the file's free blocks until they
are reused, so :func:`compact_duckdb` rewrites the file. Snowflake keeps deleted rows
for Time Travel and Fail-safe (README, "What Snowflake keeps after a DELETE").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sluice.erasure.index import CASELESS_TYPES
from sluice.erasure.registry import PersonalTable

log = logging.getLogger(__name__)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def match_condition(table: PersonalTable, identifiers: Mapping[str, Iterable[str]]) -> str | None:
    """SQL that is true for the people's rows of ``table``; None when it holds none of the types."""
    terms = []
    for column, kind in table.identifiers:
        values = sorted(set(identifiers.get(kind, ())))
        if not values:
            continue
        quoted = f'"{column}"'
        expression = f"lower(trim({quoted}))" if kind in CASELESS_TYPES else f"cast({quoted} as varchar)"
        terms.append(f"{expression} in ({', '.join(_literal(v) for v in values)})")
    return " or ".join(terms) or None


def existing_tables(cursor: Any, tables: Iterable[PersonalTable]) -> set[str]:
    """The names of ``tables`` the warehouse holds."""
    cursor.execute("select lower(table_schema), lower(table_name) from information_schema.tables")
    present = {f"{schema}.{name}" for schema, name in cursor.fetchall()}
    return {table.name for table in tables if table.name.lower() in present}


def erase_from_warehouse(
    connection: Any, tables: Iterable[PersonalTable], identifiers: Mapping[str, Iterable[str]]
) -> dict[str, int]:
    """Delete the people's rows from every declared warehouse table; rows removed per table.

    All deletes run in one transaction: a failure leaves every table as it was.
    """
    tables = [t for t in tables if t.store == "warehouse" and t.kind == "table"]
    cursor = connection.cursor()
    existing = existing_tables(cursor, tables)
    removed: dict[str, int] = {}
    cursor.execute("begin")
    try:
        for table in tables:
            condition = match_condition(table, identifiers)
            if table.name not in existing or condition is None:
                continue
            schema, name = table.name.split(".", 1)
            cursor.execute(f'delete from "{schema}"."{name}" where {condition}')
            row = cursor.fetchone()  # both warehouses answer a DELETE with its count
            removed[table.name] = int(row[0]) if row else cursor.rowcount
        cursor.execute("commit")
    except BaseException:
        cursor.execute("rollback")
        raise
    return removed


def compact_duckdb(path: Path) -> int:
    """Rewrite the DuckDB file so that no deleted row survives in its free blocks.

    The database is copied table by table into a new file (``COPY FROM DATABASE``),
    which then replaces the old one. The caller holds the warehouse's writer slot (the
    ``sluice_warehouse`` pool): nobody else writes the file meanwhile. Returns the bytes
    the file shrank by.
    """
    import duckdb

    fresh = path.with_name(f".{path.name}.compacting")
    for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
        leftover.unlink(missing_ok=True)
    before = path.stat().st_size
    con = duckdb.connect(str(path))
    try:
        (database,) = con.execute("select current_database()").fetchone()
        con.execute(f"attach '{fresh}' as sluice_compacted")
        con.execute(f'copy from database "{database}" to sluice_compacted')
        con.execute("detach sluice_compacted")
    finally:
        con.close()
    os.replace(fresh, path)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)
    return before - path.stat().st_size
