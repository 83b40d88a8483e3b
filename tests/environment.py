"""The environment make gives Airflow (include/airflow/env.mk), for tests and their subprocesses."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
VENV2_BIN = ROOT / ".venv-airflow2" / "bin"
_EXPORT = re.compile(r"^export\s+(\w+)\s*[?:]?=\s*(.*)$")


def make_environment() -> dict[str, str]:
    """Variables exported by include/airflow/env.mk, with $(CURDIR) resolved."""
    values: dict[str, str] = {}
    for line in (ROOT / "include" / "airflow" / "env.mk").read_text().splitlines():
        match = _EXPORT.match(line.strip())
        if match:
            name, value = match.groups()
            value = value.replace("$(CURDIR)", str(ROOT))
            value = re.sub(r"\$\((\w+)\)", lambda m: values.get(m.group(1), ""), value)
            values[name] = value
    values["PYTHONPATH"] = str(ROOT / "plugins")
    return values


def isolated_environment(airflow_home: Path, data_dir: Path) -> dict[str, str]:
    """A full process environment whose Airflow home and data live under the given folders."""
    env = {**os.environ, **make_environment()}
    env.update(
        AIRFLOW_HOME=str(airflow_home),
        SLUICE_DATA_DIR=str(data_dir),
        SLUICE_WAREHOUSE_PATH=str(data_dir / "warehouse" / "sluice.duckdb"),
        AIRFLOW__COSMOS__CACHE_DIR=str(airflow_home / "cosmos-cache"),
    )
    env.pop("SLUICE_LAKE_ROOT", None)
    return env


def declared_sources(folder: Path, names: list[str], include: Path | None = None) -> dict[str, str]:
    """Variables for a platform of only the sources ``names``: a DAG folder of their
    ingestion DAGs beside the transform and erasure DAGs (links to the project's files),
    and an include folder declaring them (``include``, else the project's declarations).

    A DAG file of a source that is not declared is an import error, so a test that
    declares its own sources takes the DAG folder with them.
    """
    dags = folder / "dags"
    (dags / "ingest").mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "dags").glob("*.py"):
        (dags / path.name).symlink_to(path)
    for name in names:
        (dags / "ingest" / f"{name}.py").symlink_to(ROOT / "dags" / "ingest" / f"{name}.py")
    if include is None:
        include = folder / "include"
        (include / "sources").mkdir(parents=True, exist_ok=True)
        for name in names:
            for path in (ROOT / "include" / "sources").glob(f"{name}*"):
                (include / "sources" / path.name).symlink_to(path)
    return {"AIRFLOW__CORE__DAGS_FOLDER": str(dags), "SLUICE_INCLUDE_DIR": str(include)}
