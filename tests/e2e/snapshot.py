"""Comparable pictures of the lake and the warehouse, for idempotency and backfill checks.

Columns stamped with the wall clock at extraction (``updated_at``, which source-faker
sets to now, and ``_airbyte_extracted_at``) differ between any two runs and are left
out. So are the purchase values source-faker draws against its clock (see
``SOURCE_CLOCK_COLUMNS``), in the purchase tables and what dbt derives from them; their
keys, customers and batches are still compared. Every other value must match.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from sluice.lake.storage import Lake, open_lake

WALL_CLOCK_COLUMNS = {"updated_at", "_airbyte_extracted_at"}
#: source-faker draws a purchase's dates between its creation and the connector's start
#: time, in whole days (``random_date_in_range``), and the user's later draws (product,
#: status) shift with them: a batch generated again minutes later differs in the
#: purchases of a user whose creation time of day fell in between (7 of 4,000 seen).
SOURCE_CLOCK_COLUMNS = {
    "product_id",
    "added_to_cart_at",
    "purchased_at",
    "returned_at",
    "status",
    "amount",
    "purchases",
    "returned",
    "gross_revenue",
    "net_revenue",
    "first_purchase_at",
    "last_purchase_at",
}
LAYERS = ("bronze", "silver", "gold", "marts")


def comparable_rows(table, name: str = "") -> list[tuple]:
    """Rows of an Arrow table, sorted, without the columns two runs cannot share."""
    source_clock = SOURCE_CLOCK_COLUMNS if "purchase" in name or "revenue" in name else set()
    columns = [c for c in table.column_names if c not in WALL_CLOCK_COLUMNS and c not in source_clock]
    rows = table.select(columns).to_pylist()
    return sorted((tuple(row.items()) for row in rows), key=repr)


def _files_under(lake: Lake, area: str) -> list[str]:
    from pyarrow.fs import FileSelector, FileType

    selector = FileSelector(lake.path(area), recursive=True, allow_not_found=True)
    return sorted(info.path for info in lake.fs.get_file_info(selector) if info.type == FileType.File)


def lake_snapshot(lake: Lake) -> dict[str, Any]:
    """Landing manifests' counts, quarantine files by path with their rows, and each bronze
    table's rows, partitions and number of active files.

    Landed files are compared through the tables that register them, not by name: every
    landing attempt writes new file names.
    """
    landing = {}
    for path in _files_under(lake, "landing"):
        if re.fullmatch(r"landing/[^/]+/[^/]+/batch=[^/]+\.json", lake.relative(path)):
            manifest = json.loads(lake.read_bytes(path))
            landing[lake.relative(path)] = {key: manifest[key] for key in ("read", "landed", "quarantined")} | {
                "files": len(manifest["files"])
            }
    quarantine = {
        lake.relative(path): comparable_rows(pq.read_table(path, filesystem=lake.fs))
        for path in _files_under(lake, "quarantine")
        if path.endswith(".parquet")
    }
    tables = {}
    for name in sorted({"/".join(lake.relative(path).split("/")[:3]) for path in _files_under(lake, "bronze")}):
        table = lake.delta_table(lake.path(name))
        if table is None:  # landed, never committed
            tables[name] = None
            continue
        tables[name] = {
            "rows": comparable_rows(table.to_pyarrow_table(), name.rsplit("/", 1)[-1]),
            "partitions": sorted(p["_sluice_batch"] for p in table.partitions()),
            "active_files": len(table.file_uris()),
        }
    return {"landing": landing, "quarantine": quarantine, "bronze": tables}


def warehouse_snapshot(path: Path) -> dict[str, list[tuple]]:
    """Every base table of the four layers, rows sorted."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        listed = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE' AND table_schema IN (?, ?, ?, ?) ORDER BY 1, 2",
            list(LAYERS),
        ).fetchall()
        return {
            f"{schema}.{table}": comparable_rows(con.sql(f'FROM "{schema}"."{table}"').to_arrow_table(), table)
            for schema, table in listed
        }
    finally:
        con.close()


def snapshot(data_dir: Path, lake: Lake | None = None) -> dict[str, Any]:
    """The lake (by default the folder ``data_dir/lake``) and the warehouse under ``data_dir``."""
    return {
        "lake": lake_snapshot(lake or open_lake(str(data_dir / "lake"))),
        "warehouse": warehouse_snapshot(data_dir / "warehouse" / "sluice.duckdb"),
    }


def differences(left: dict[str, Any], right: dict[str, Any]) -> list[str]:
    """Human-readable list of what differs (empty when equal)."""
    problems = []
    for part in ("lake", "warehouse"):
        if part == "lake":
            for kind in ("landing", "quarantine", "bronze"):
                a, b = left[part][kind], right[part][kind]
                for key in sorted(set(a) | set(b)):
                    if a.get(key) != b.get(key):
                        problems.append(f"lake {kind} {key} differs")
        else:
            a, b = left[part], right[part]
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    problems.append(
                        f"warehouse {key}: {len(a.get(key) or [])} vs {len(b.get(key) or [])} rows, contents differ"
                    )
    return problems
