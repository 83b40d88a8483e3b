"""Names of the warehouse's tables, the same on every warehouse, and connections through any SQL hook."""

from __future__ import annotations

from typing import Any


def warehouse_table(source: str, stream: str) -> str:
    """The bronze table of a source stream: ``<source>__<stream>``."""
    return f"{source}__{stream}"


def sql_connection(conn_id: str) -> Any:
    """A DB-API connection through the Airflow connection ``conn_id``, whatever database its
    common-sql hook speaks to (PostgreSQL, Snowflake, ...).

    :raises ValueError: the connection's type has no SQL hook
    :raises WarehouseAccessError: the database refused the connection, naming ``conn_id``
    """
    from airflow.providers.common.compat.sdk import BaseHook
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    from sluice.warehouse.snowflake_hook import WarehouseAccessError

    connection = BaseHook.get_connection(conn_id)
    hook = connection.get_hook()
    if not isinstance(hook, DbApiHook):
        raise ValueError(
            f"the Airflow connection {conn_id!r} is of type {connection.conn_type!r}, which has no SQL hook:"
            " use a database connection (postgres, snowflake, ...)"
        )
    try:
        return hook.get_conn()
    except Exception as error:  # each driver has its own error classes
        raise WarehouseAccessError(
            f"cannot connect through the Airflow connection {conn_id!r} ({connection.conn_type}): {error}"
        ) from error
