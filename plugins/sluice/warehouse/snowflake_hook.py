"""The Snowflake provider's hook, with the connection's ``protocol`` extra passed on."""

from __future__ import annotations

from typing import Any

from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook


def snowflake_connection() -> Any:
    """An open connection to the warehouse through ``SLUICE_SNOWFLAKE_CONN_ID``."""
    from sluice import config

    return SluiceSnowflakeHook(snowflake_conn_id=config.snowflake_conn_id()).get_conn()


class SluiceSnowflakeHook(SnowflakeHook):
    """``SnowflakeHook`` that also passes the extras ``protocol`` (``https``, or ``http``
    for a local endpoint such as a fakesnow server), which the provider's hook drops
    while it passes ``host`` and ``port``."""

    def _get_conn_params(self) -> dict[str, Any]:
        params = super()._get_conn_params()
        protocol = self.get_connection(self.get_conn_id()).extra_dejson.get("protocol")
        if protocol:
            params["protocol"] = protocol
        return params
