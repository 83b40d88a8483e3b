"""``make dbt-docs``: the docs the UI serves, made without the network and without taking
the warehouse file from a batch that holds it.

Each run is the make target itself, in a network namespace with no interface up where the
machine allows one (``unshare -n``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import duckdb

from environment import ROOT, make_environment


def no_network() -> list[str]:
    """A command prefix that cuts the network off, where the machine allows it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n", "--"]
    return []


def make_docs(docs: Path, warehouse: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        **make_environment(),
        "SLUICE_DBT_DOCS_DIR": str(docs),
        "SLUICE_WAREHOUSE_PATH": str(warehouse),
    }
    # this interpreter's virtualenv is the installed one: make must not resync it
    command = ["make", "--no-print-directory", "-o", str(ROOT / ".venv" / ".installed"), *args, "dbt-docs"]
    return subprocess.run([*no_network(), *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def read(docs: Path, name: str) -> dict:
    return json.loads((docs / name).read_text())


def test_without_a_warehouse_the_docs_have_an_empty_catalog(tmp_path):
    docs, warehouse = tmp_path / "docs", tmp_path / "warehouse" / "sluice.duckdb"
    proc = make_docs(docs, warehouse)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "empty catalog" in proc.stdout
    assert "model.sluice.dim_customers" in read(docs, "manifest.json")["nodes"]
    assert read(docs, "catalog.json")["nodes"] == {}
    assert b"</head>" in (docs / "index.html").read_bytes()
    # no warehouse file was made on the way
    assert not warehouse.parent.exists()


def test_a_built_warehouse_fills_the_catalog_and_newer_warehouse_data_remakes_the_docs(tmp_path):
    docs, warehouse = tmp_path / "docs", tmp_path / "sluice.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("CREATE SCHEMA gold; CREATE TABLE gold.dim_customers (customer_id INTEGER, email VARCHAR)")
    con.close()
    proc = make_docs(docs, warehouse)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"catalog from {warehouse}" in proc.stdout
    node = read(docs, "catalog.json")["nodes"]["model.sluice.dim_customers"]
    assert {name.lower() for name in node["columns"]} == {"customer_id", "email"}
    assert make_docs(docs, warehouse, "--question").returncode == 0  # up to date
    os.utime(warehouse, (os.path.getmtime(docs / "index.html") + 10,) * 2)
    assert make_docs(docs, warehouse, "--question").returncode == 1  # the warehouse changed: remade


def test_a_warehouse_held_by_a_batch_gives_docs_with_an_empty_catalog(tmp_path):
    docs, warehouse = tmp_path / "docs", tmp_path / "sluice.duckdb"
    writer = duckdb.connect(str(warehouse))  # a batch holding the file read-write
    try:
        writer.execute("CREATE SCHEMA gold; CREATE TABLE gold.dim_customers (customer_id INTEGER)")
        proc = make_docs(docs, warehouse)
    finally:
        writer.close()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"could not read the catalog from {warehouse}" in proc.stderr
    assert read(docs, "catalog.json")["nodes"] == {}
    assert "model.sluice.dim_customers" in read(docs, "manifest.json")["nodes"]


def test_make_up_makes_the_docs_first():
    plan = subprocess.run(
        ["make", "--no-print-directory", "--dry-run", "--always-make", "up"],
        cwd=ROOT,
        env={**os.environ, **make_environment()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plan.returncode == 0, plan.stderr[-2000:]
    lines = plan.stdout.splitlines()
    docs = next(i for i, line in enumerate(lines) if "include/scripts/dbt_docs.sh" in line)
    assert docs < next(i for i, line in enumerate(lines) if "include/scripts/up.sh" in line)
