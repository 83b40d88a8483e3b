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
