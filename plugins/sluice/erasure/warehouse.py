"""Erase people from every warehouse table that holds them, every layer, DuckDB or Snowflake.

Each declared table (bronze loads, dbt models of every layer; views are erased through
the tables they read) loses the rows whose identifier columns hold one of the people's
identifiers, compared as the index compares them (emails without case and blanks).

A DELETE only marks rows: DuckDB keeps their bytes in the file's free blocks until they
are reused, so :func:`sluice.warehouse.duckdb_load.compact_duckdb` rewrites the file. Snowflake keeps deleted rows
for Time Travel and Fail-safe (README, "What Snowflake keeps after a DELETE").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sluice.erasure.registry import PersonalTable
from sluice.lake.index import CASELESS_TYPES, normalise

log = logging.getLogger(__name__)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _column(name: str) -> str:
    return f'"{name}"'


def match_condition(
    table: PersonalTable, identifiers: Mapping[str, Iterable[str]], column: Callable[[str], str] = _column
) -> str | None:
    """SQL that is true for the people's rows of ``table``; None when it holds none of the types.

    :param column: the SQL expression of a declared column (by default the column itself)
    """
    terms = []
    for name, kind in table.identifiers:
        values = sorted(set(identifiers.get(kind, ())))
        if not values:
            continue
        text = f"cast({column(name)} as varchar)"
        expression = f"lower(trim({text}))" if kind in CASELESS_TYPES else text
        terms.append(f"{expression} in ({', '.join(_literal(v) for v in values)})")
    return " or ".join(terms) or None


def warehouse_tables(cursor: Any) -> dict[str, str]:
    """The warehouse's tables: ``schema.table`` in lower case -> as the warehouse names it."""
    cursor.execute("select table_schema, table_name from information_schema.tables")
    return {f"{schema}.{name}".lower(): f"{schema}.{name}" for schema, name in cursor.fetchall()}


@dataclass(frozen=True)
class Target:
    """A warehouse table that may hold the people: its quoted name, its declaration, and
    how its declared columns read in SQL."""

    name: str
    table: PersonalTable
    column: Callable[[str], str] = _column

    def condition(self, identifiers: Mapping[str, Iterable[str]]) -> str | None:
        return match_condition(self.table, identifiers, self.column)

    @property
    def label(self) -> str:
        return self.name.replace('"', "")


def targets(cursor: Any, tables: Iterable[PersonalTable]) -> list[Target]:
    """Every warehouse table that may hold the people.

    Declared tables the warehouse holds (views are left out: they show what their tables
    hold), and for a source whose Airbyte connection writes the warehouse, the tables it
    wrote: the typed ones (Airbyte's Snowflake destination upper-cases column names) and
    the raw ones (each record whole in ``_AIRBYTE_DATA``).
    """
    present = warehouse_tables(cursor)
    found = []
    for table in (t for t in tables if t.kind == "table"):
        if table.store == "warehouse" and table.name.lower() in present:
            found.append(Target(_qualified(table.name), table))
        elif table.store == "airbyte":
            from sluice.ingest.airbyte.warehouse import destination_tables

            source, stream = table.name.split("/", 1)
            for name, kind in destination_tables(cursor, source, stream, present):
                found.append(Target(_qualified(name), table, _raw_field if kind == "raw" else _upper_column))
    return found


def _raw_field(name: str) -> str:
    return f'"_AIRBYTE_DATA":"{name}"'


def _upper_column(name: str) -> str:
    return f'"{name.upper()}"'


def _qualified(name: str) -> str:
    schema, table = name.split(".", 1)
    return f'"{schema}"."{table}"'


def erase_from_warehouse(
    connection: Any, tables: Iterable[PersonalTable], identifiers: Mapping[str, Iterable[str]]
) -> dict[str, int]:
    """Delete the people's rows from every warehouse table that may hold them (see
    :func:`targets`); rows removed per table.

    All deletes run in one transaction: a failure leaves every table as it was.
    """
    cursor = connection.cursor()
    found = [(target, target.condition(identifiers)) for target in targets(cursor, tables)]
    removed: dict[str, int] = {}
    cursor.execute("begin")
    try:
        for target, condition in found:
            if condition is None:
                continue
            cursor.execute(f"delete from {target.name} where {condition}")
            row = cursor.fetchone()  # both warehouses answer a DELETE with its count
            removed[target.label] = int(row[0]) if row else cursor.rowcount
        cursor.execute("commit")
    except BaseException:
        cursor.execute("rollback")
        raise
    return removed


def residue(
    connection: Any,
    tables: Iterable[PersonalTable],
    identifiers: Mapping[str, Iterable[str]],
    personal: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, int]:
    """Rows of the people still in the warehouse, per table that holds any: rows with one of
    their identifiers, or with a personal value only they had in a declared ``pii`` column
    (``personal``: ``pii:<column>`` -> values, :func:`sluice.erasure.pii.unattributed`;
    not for an Airbyte connection's tables, whose values no lake table attributes)."""
    from sluice.erasure.pii import PREFIX

    cursor = connection.cursor()
    found = {}
    for target in targets(cursor, tables):
        terms = [target.condition(identifiers)]
        for column in target.table.pii if target.table.store == "warehouse" else ():
            if values := sorted(set((personal or {}).get(PREFIX + column, ()))):
                listed = ", ".join(_literal(value) for value in values)
                terms.append(f"lower(trim(cast({target.column(column)} as varchar))) in ({listed})")
        condition = " or ".join(term for term in terms if term)
        if not condition:
            continue
        cursor.execute(f"select count(*) from {target.name} where {condition}")
        if count := cursor.fetchone()[0]:
            found[target.label] = count
    return found


def held_identifiers(
    connection: Any, tables: Iterable[PersonalTable], identifiers: Mapping[str, Iterable[str]]
) -> dict[str, set[str]]:
    """The identifiers (type -> normalised values) of the people's rows in the tables only
    the warehouse holds (those an Airbyte connection writes): what the lake's index cannot
    resolve."""
    cursor = connection.cursor()
    found: dict[str, set[str]] = {}
    for target in targets(cursor, [t for t in tables if t.store == "airbyte"]):
        condition = target.condition(identifiers)
        if condition is None:
            continue
        columns = [(f"cast({target.column(name)} as varchar)", kind) for name, kind in target.table.identifiers]
        cursor.execute(f"select {', '.join(c for c, _ in columns)} from {target.name} where {condition}")
        for row in cursor.fetchall():
            for value, (_, kind) in zip(row, columns, strict=True):
                if value is not None:
                    found.setdefault(kind, set()).add(normalise(kind, value))
    return found
