"""Check results in the warehouse, ``ops.batch_metrics``: the same rows as the lake's
``ops/check_results``, where analysts and BI tools query them beside the data.

One row per figure (the columns of :class:`~sluice.checks.results.CheckResult`). A rerun
of a batch's check replaces that batch's rows of the same (table, check). ``check`` is
a reserved word in SQL: quote it (:meth:`sluice.warehouse.target.Warehouse.quote`).
On the embedded DuckDB warehouse, tasks writing here take the warehouse pool.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from sluice.checks.results import CheckResult
from sluice.warehouse.target import Warehouse, current

log = logging.getLogger(__name__)

SCHEMA, TABLE = "ops", "batch_metrics"
#: column -> its portable kind (the others are text)
COLUMN_KINDS = {"checked_at": "timestamp", "value": "double", "threshold": "double", "blocking": "boolean"}


def create_table(cursor: Any, warehouse: Warehouse) -> None:
    columns = ", ".join(
        f"{warehouse.quote(field.name)} {warehouse.sql_type(COLUMN_KINDS.get(field.name, 'text'))}"
        for field in dataclasses.fields(CheckResult)
    )
    # a Snowflake role may create tables in ops (include/snowflake/setup.sql) but no schema
    cursor.execute(f"SELECT count(*) FROM information_schema.schemata WHERE lower(schema_name) = '{SCHEMA}'")
    if not cursor.fetchone()[0]:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{TABLE} ({columns})")


def write_batch_metrics(connection: Any, results: Sequence[CheckResult], warehouse: Warehouse | None = None) -> int:
    """Replace, in one transaction, the rows of the same (dag, batch, table, check) with
    ``results``; the rows written.

    :param connection: a DB-API connection to the warehouse
        (:func:`sluice.warehouse.target.warehouse_connection`)
    :param warehouse: the warehouse it reaches (the configured one by default)
    """
    if not results:
        return 0
    warehouse = warehouse or current()
    mark = warehouse.mark
    names = [field.name for field in dataclasses.fields(CheckResult)]
    column = {name: warehouse.quote(name) for name in names}
    cursor = connection.cursor()
    try:
        create_table(cursor, warehouse)
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
