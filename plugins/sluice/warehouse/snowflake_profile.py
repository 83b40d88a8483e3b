"""dbt's Snowflake profile from the Airflow connection, through Cosmos' profile mappings.

The connection is read when a dbt task runs, never while the DAG folder is parsed, so
the mapping is chosen by ``SLUICE_SNOWFLAKE_AUTH`` (``password``, default, or
``key-pair``: the connection's ``private_key_content`` extra). Both also map the
``protocol`` extra, as the load's hook does (``http`` for a local endpoint).
"""

from __future__ import annotations

from typing import Any


def snowflake_profile_mapping(conn_id: str, schema: str = "bronze") -> Any:
    from cosmos.profiles.snowflake.user_pass import SnowflakeUserPasswordProfileMapping
    from cosmos.profiles.snowflake.user_privatekey import SnowflakePrivateKeyPemProfileMapping

    from sluice.core import config

    auth = config.snowflake_auth()
    base = SnowflakeUserPasswordProfileMapping if auth == "password" else SnowflakePrivateKeyPemProfileMapping
    mapping = type(
        f"Sluice{base.__name__}",
        (base,),
        {"airflow_param_mapping": {**base.airflow_param_mapping, "protocol": "extra.protocol"}},
    )
    return mapping(conn_id=conn_id, profile_args={"schema": schema})
