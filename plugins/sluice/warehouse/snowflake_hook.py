"""The Snowflake provider's hook, with the connection's ``protocol`` extra passed on."""

from __future__ import annotations

from typing import Any

from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook


class WarehouseAccessError(RuntimeError):
    """Snowflake refused the login or could not be reached."""


def snowflake_connection() -> Any:
    """An open connection to the warehouse through ``SLUICE_SNOWFLAKE_CONN_ID``.

    :raises WarehouseAccessError: the login failed, naming the Airflow connection, the
        account and user it holds, and Snowflake's reason
    """
    from snowflake.connector.errors import DatabaseError

    from sluice.core import config

    conn_id = config.snowflake_conn_id()
    hook = SluiceSnowflakeHook(snowflake_conn_id=conn_id)
    try:
        return hook.get_conn()
    except DatabaseError as error:
        connection = hook.get_connection(conn_id)
        account = connection.extra_dejson.get("account") or "?"
        raise WarehouseAccessError(
            f"cannot log in to Snowflake through the Airflow connection {conn_id!r}"
            f" (account {account}, user {connection.login}): {error.msg or error}"
        ) from error


# extras the provider's hook drops, passed on to the connector
PASSED_EXTRAS = {"protocol": str, "login_timeout": int, "network_timeout": int, "socket_timeout": int}


class SluiceSnowflakeHook(SnowflakeHook):
    """``SnowflakeHook`` that also passes these extras of the connection to the connector:
    ``protocol`` (``https``, or ``http`` for a local endpoint such as a fakesnow server,
    next to the ``host`` and ``port`` the provider passes), and the timeouts in seconds
    ``login_timeout``, ``network_timeout`` (a request and its retries) and
    ``socket_timeout`` (one read), without which a warehouse that stops answering
    holds the task until Airflow's own timeout."""

    def _get_conn_params(self) -> dict[str, Any]:
        params = super()._get_conn_params()
        extras = self.get_connection(self.get_conn_id()).extra_dejson
        for name, kind in PASSED_EXTRAS.items():
            if extras.get(name) not in (None, ""):
                params[name] = kind(extras[name])
        return params
