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
