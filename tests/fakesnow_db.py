"""Databases on a fakesnow server laid out as include/snowflake/setup.sql lays out Snowflake's."""

from __future__ import annotations

import uuid


def new_database(server: dict) -> str:
    """A new database with the BRONZE schema and the SLUICE_LAKE stage (internal: fakesnow
    reads no S3); its name."""
    import snowflake.connector

    database = f"SLUICE_{uuid.uuid4().hex[:8].upper()}"
    setup = snowflake.connector.connect(**server)
    try:
        for sql in (f"CREATE DATABASE {database}", f"CREATE SCHEMA {database}.BRONZE"):
            setup.cursor().execute(sql)
        setup.cursor().execute(f"CREATE STAGE {database}.BRONZE.SLUICE_LAKE")
    finally:
        setup.close()
    return database


def airflow_connection(server: dict, database: str, **extra) -> dict:
    """An Airflow Snowflake connection to ``database`` on the server, as JSON for an
    ``AIRFLOW_CONN_*`` variable; ``extra`` adds or overrides extras."""
    return {
        "conn_type": "snowflake",
        "login": server["user"],
        "password": server["password"],
        "schema": "bronze",
        "extra": {
            "account": server["account"],
            "database": database,
            "warehouse": "SLUICE",
            "role": "SLUICE",
            "host": server["host"],
            "port": server["port"],
            "protocol": server["protocol"],
            **extra,
        },
    }


def dbt_env(server: dict, database: str) -> dict[str, str]:
    """The environment the project's ``snowflake`` profile output reads, for ``database``."""
    return {
        "SLUICE_WAREHOUSE": "snowflake",
        "SNOWFLAKE_ACCOUNT": server["account"],
        "SNOWFLAKE_USER": server["user"],
        "SNOWFLAKE_PASSWORD": server["password"],
        "SNOWFLAKE_DATABASE": database,
        "SNOWFLAKE_WAREHOUSE": "SLUICE",
        "SNOWFLAKE_ROLE": "SLUICE",
        "SNOWFLAKE_HOST": server["host"],
        "SNOWFLAKE_PORT": str(server["port"]),
        "SNOWFLAKE_PROTOCOL": server["protocol"],
    }
