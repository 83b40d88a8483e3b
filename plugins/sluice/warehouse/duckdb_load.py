"""Load a bronze batch into the embedded DuckDB warehouse.

Table ``bronze.<source>__<stream>`` mirrors the lake table, partition column included. A
load deletes the batch's rows and inserts the batch in one transaction, so it is
idempotent and readers see the old batch or the new one, never a mix. Columns that
appear in the lake later are added to the table first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sluice.core import config
from sluice.lake.files import BATCH_COLUMN, bronze_table
from sluice.lake.storage import Lake, open_lake
from sluice.warehouse.tables import warehouse_table

#: rows per Arrow batch a load hands DuckDB
READ_BATCH_ROWS = 65_536


def connect(path: Path | None = None, read_only: bool = False):
    import duckdb

    path = path or config.warehouse_path()
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    # DuckDB keeps up to 80 % of RAM of table pages cached: a load would grow with its batch.
    # Set, not connect(config=...): a process holds one configuration per file, and dbt
    # may have opened it already (make run).
    con.execute(f"SET memory_limit = '{config.duckdb_memory_limit()}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def load_batch(
    source: str,
    stream: str,
    batch: str,
    lake: Lake | None = None,
    warehouse: Path | None = None,
    schema: str = "bronze",
) -> dict[str, Any]:
    """Replace ``batch`` in the warehouse table with the lake table's partition."""
    table = bronze_table(lake or open_lake(), source, stream)
    dataset = table.to_pyarrow_dataset(partitions=[(BATCH_COLUMN, "=", batch)])
    no_rows = dataset.schema.empty_table()  # noqa: F841 (read by DuckDB)
    # one stream of bounded batches, read once: DuckDB's own scan of the dataset reads
    # ahead in million-row batches, outside its memory limit (a 4x batch's load peaked
    # 1.56x as high as a 1x one's)
    batch_rows = dataset.scanner(batch_size=READ_BATCH_ROWS, batch_readahead=1, fragment_readahead=1).to_reader()  # noqa: F841
    target = f'"{schema}"."{warehouse_table(source, stream)}"'
    con = connect(warehouse)
    try:
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        con.execute(f"CREATE TABLE IF NOT EXISTS {target} AS SELECT * FROM no_rows")
        existing = {row[0] for row in con.execute(f"DESCRIBE {target}").fetchall()}
        con.execute("BEGIN TRANSACTION")
        for name, type_, *_ in con.execute("DESCRIBE SELECT * FROM no_rows").fetchall():
            if name not in existing:
                con.execute(f'ALTER TABLE {target} ADD COLUMN "{name}" {type_}')
        con.execute(f"DELETE FROM {target} WHERE {BATCH_COLUMN} = ?", [batch])
        con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM batch_rows")
        con.execute("COMMIT")
        (rows,) = con.execute(f"SELECT count(*) FROM {target} WHERE {BATCH_COLUMN} = ?", [batch]).fetchone()
    except Exception:
        con.rollback()
        raise
    finally:
        con.close()
    return {"table": f"{schema}.{warehouse_table(source, stream)}", "rows": rows}


def compact_duckdb(path: Path) -> int:
    """Rewrite the DuckDB file so that no deleted row survives in its free blocks.

    The database is copied table by table into a new file (``COPY FROM DATABASE``),
    which then replaces the old one. The caller holds the warehouse's writer slot (the
    ``sluice_warehouse`` pool): nobody else writes the file meanwhile. Returns the bytes
    the file shrank by.
    """
    import duckdb

    fresh = path.with_name(f".{path.name}.compacting")
    for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
        leftover.unlink(missing_ok=True)
    before = path.stat().st_size
    con = duckdb.connect(str(path))
    try:
        (database,) = con.execute("select current_database()").fetchone()
        con.execute(f"attach '{fresh}' as sluice_compacted")
        con.execute(f'copy from database "{database}" to sluice_compacted')
        con.execute("detach sluice_compacted")
    finally:
        con.close()
    os.replace(fresh, path)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)
    return before - path.stat().st_size
