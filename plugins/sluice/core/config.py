"""Where the platform keeps things, read from the environment.

Every path can be moved with an environment variable, so the same DAG files run on the
embedded defaults (folders under the project) and in production (set by the deployment).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _path(var: str, default: Path) -> Path:
    return Path(os.environ.get(var) or default).resolve()


def data_dir() -> Path:
    """Root of the embedded runtime data (lake folder and warehouse file)."""
    return _path("SLUICE_DATA_DIR", PROJECT_ROOT / ".data")


def lake_root() -> str:
    """Root of the lake (``landing/``, ``bronze/``, ``quarantine/``, ``state/``): a folder
    or ``s3://bucket/prefix`` (see :func:`sluice.lake.storage.open_lake`)."""
    return os.environ.get("SLUICE_LAKE_ROOT") or str(data_dir() / "lake")


def warehouse_path() -> Path:
    """DuckDB file of the embedded warehouse."""
    return _path("SLUICE_WAREHOUSE_PATH", data_dir() / "warehouse" / "sluice.duckdb")


WAREHOUSES = ("duckdb", "snowflake")


def warehouse() -> str:
    """The warehouse bronze is loaded into and dbt builds on: ``duckdb`` or ``snowflake``."""
    name = os.environ.get("SLUICE_WAREHOUSE") or "duckdb"
    if name not in WAREHOUSES:
        raise ValueError(f"SLUICE_WAREHOUSE={name!r}: expected one of {', '.join(WAREHOUSES)}")
    return name


def snowflake_conn_id() -> str:
    """Airflow connection of the Snowflake warehouse (password or key-pair)."""
    return os.environ.get("SLUICE_SNOWFLAKE_CONN_ID") or "snowflake_default"


def duckdb_memory_limit() -> str:
    """Memory DuckDB may use in a Sluice process (loads, reports); it spills beyond that."""
    return os.environ.get("SLUICE_DUCKDB_MEMORY_LIMIT", "256MB")


def connectors_dir() -> Path:
    """Folder holding one virtualenv per Airbyte connector (``<name>/bin/<name>``)."""
    return _path("SLUICE_CONNECTORS_DIR", PROJECT_ROOT / ".connectors")


def include_dir() -> Path:
    return _path("SLUICE_INCLUDE_DIR", PROJECT_ROOT / "include")


def dbt_project_dir() -> Path:
    return _path("SLUICE_DBT_PROJECT_DIR", PROJECT_ROOT / "dbt_project")


def dbt_executable() -> Path:
    """The ``dbt`` command; by default the one installed beside this Python."""
    return Path(os.environ.get("SLUICE_DBT_EXECUTABLE") or Path(sys.executable).with_name("dbt"))


def dbt_manifest_path() -> Path:
    return _path("SLUICE_DBT_MANIFEST", dbt_project_dir() / "target" / "manifest.json")


def dbt_docs_dir() -> Path:
    """The generated dbt docs (``index.html``, ``manifest.json``, ``catalog.json``) the UI serves."""
    return _path("SLUICE_DBT_DOCS_DIR", dbt_project_dir() / "target" / "docs")


#: Airflow pool that serialises writers of the embedded DuckDB file (one writer at a time).
WAREHOUSE_POOL = os.environ.get("SLUICE_WAREHOUSE_POOL", "sluice_warehouse")


def sources_dir() -> Path:
    """Source declarations, one ``<name>.yml`` per source."""
    return include_dir() / "sources"


def erasure_salt() -> bytes:
    """The secret that salts the erasure index's hashes (``SLUICE_ERASURE_SALT``).

    Without it (the embedded default), a random salt is made once and kept in
    ``$SLUICE_DATA_DIR/erasure.salt``, outside the lake it protects.
    """
    secret = os.environ.get("SLUICE_ERASURE_SALT")
    if secret:
        return secret.encode()
    path = data_dir() / "erasure.salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
                file.write(os.urandom(32).hex())
        except FileExistsError:  # another process made it first
            pass
    return path.read_text().strip().encode()


def _number(var: str, default: float, low: float, high: float, unit: str, *, zero: bool = True) -> float:
    """``var`` as a number in [low, high] (above 0 when not ``zero``), or ``default`` when
    unset; a clear error otherwise."""
    text = os.environ.get(var)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (low <= value <= high and (zero or value > 0)):
        span = f"from {low:g}" if zero else "above 0"
        raise ValueError(f"{var}={text!r}: expected a number of {unit} {span} to {high:g}")
    return value


def _choice(var: str, choices: tuple[str, ...]) -> str:
    """``var``, one of ``choices`` (the first when unset)."""
    value = os.environ.get(var) or choices[0]
    if value not in choices:
        raise ValueError(f"{var}={value!r}: expected one of {', '.join(choices)}")
    return value


# -- ingestion and the lake


def catalog_max_age_hours() -> float:
    """How long a connector's discovered catalog is reused before it is asked again."""
    return _number("SLUICE_CATALOG_MAX_AGE_HOURS", 24, 0, 24 * 365, "hours")


def bronze_retention_hours() -> int:
    """Hours a replaced bronze file stays on disk for readers of older versions (Delta's default 168)."""
    return int(_number("SLUICE_BRONZE_RETENTION_HOURS", 168, 0, 24 * 365, "hours"))


def retry_delay_seconds() -> float:
    """First retry of a failed task after this many seconds, then exponentially later."""
    return _number("SLUICE_RETRY_DELAY_SECONDS", 60, 0, 24 * 3600, "seconds")


def aws_conn_id() -> str:
    """Airflow connection of an S3 lake; without it, the standard AWS environment variables."""
    return os.environ.get("SLUICE_AWS_CONN_ID") or "aws_default"


def aws_environment() -> dict[str, str]:
    """The standard AWS variables an S3 lake falls back to (credentials, region, endpoint)."""
    env = os.environ
    return {
        "access_key": env.get("AWS_ACCESS_KEY_ID", ""),
        "secret_key": env.get("AWS_SECRET_ACCESS_KEY", ""),
        "session_token": env.get("AWS_SESSION_TOKEN", ""),
        "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        "endpoint": env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL", ""),
    }


def s3_client() -> dict[str, str]:
    """Attempts of a request that fails for the network or a 5xx, and its timeouts."""
    env = os.environ
    return {
        "attempts": env.get("SLUICE_S3_MAX_ATTEMPTS", "5"),
        "connect_timeout": env.get("SLUICE_S3_CONNECT_TIMEOUT_SECONDS", "10"),
        "request_timeout": env.get("SLUICE_S3_REQUEST_TIMEOUT_SECONDS", "60"),
    }


# -- the warehouse and dbt


def snowflake_stage() -> str:
    """The Snowflake stage loads read the lake's files from (``include/snowflake/setup.sql``)."""
    return os.environ.get("SLUICE_SNOWFLAKE_STAGE") or "SLUICE_LAKE"


def snowflake_stage_type() -> str:
    """``external`` (Snowflake reads the S3 bucket) or ``internal`` (files uploaded by PUT)."""
    return _choice("SLUICE_SNOWFLAKE_STAGE_TYPE", ("external", "internal"))


def snowflake_auth() -> str:
    """How dbt logs in to Snowflake from the Airflow connection: ``password`` or ``key-pair``."""
    return _choice("SLUICE_SNOWFLAKE_AUTH", ("password", "key-pair"))


def dbt_execution() -> str:
    """``watcher`` (one ``dbt build`` that per-model tasks watch) or ``local`` (a dbt call per model)."""
    return _choice("SLUICE_DBT_EXECUTION", ("watcher", "local"))


# -- erasure


def erasure_retention_hours() -> int:
    """Hours between an erasure and the purge of old versions (the legal deadline is a month)."""
    return int(_number("SLUICE_ERASURE_RETENTION_HOURS", 0, 0, 24 * 30, "hours"))


# -- alerts


def slack_conn_id() -> str:
    """Airflow connection of Slack: type ``slackwebhook`` (webhook URL) or ``slack`` (API token)."""
    return os.environ.get("SLUICE_SLACK_CONN_ID") or "slack_alerts"


def slack_channel() -> str | None:
    """Channel of alerts whose source or model names none (``#data-alerts``)."""
    return os.environ.get("SLUICE_SLACK_CHANNEL") or None


def slack_owner() -> str | None:
    """Who is mentioned when the source or model names no owner (``<@U024BE7LH>``,
    ``<!subteam^S0123ABC>``, ``<!here>``)."""
    return os.environ.get("SLUICE_SLACK_OWNER") or None


SLACK_TIMEOUT_SECONDS = 2.0


def slack_timeout_seconds() -> float:
    """Longest a Slack call may hold up a task."""
    return _number("SLUICE_SLACK_TIMEOUT_SECONDS", SLACK_TIMEOUT_SECONDS, 0, 60, "seconds", zero=False)


def batch_late_hours() -> float:
    """How long after its interval ended a batch may still be running before it is late."""
    return _number("SLUICE_BATCH_LATE_HOURS", 5.0, 0, 24 * 7, "hours", zero=False)
