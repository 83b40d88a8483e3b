"""What a batch produced: rows read, landed, quarantined and suppressed, and rows per warehouse layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sluice.core.sources import load_source, source_names
from sluice.ingest.landing import LandingError, read_manifest
from sluice.lake.storage import Lake, open_lake
from sluice.warehouse.target import warehouse_connection

LAYERS = ("bronze", "silver", "gold", "marts")
#: A landing's counts: read = landed + quarantined + suppressed (records of erased people).
COUNTS = ("read", "landed", "quarantined", "suppressed")


def batch_summary(batch: str, lake: Lake | None = None, warehouse: Path | None = None) -> dict[str, Any]:
    """Landing counts per source stream and row counts per warehouse table."""
    lake = lake or open_lake()
    landing = {}
    for name in source_names():
        for stream in load_source(name).streams:
            try:
                manifest = read_manifest(lake, name, stream.name, batch)
            except (FileNotFoundError, LandingError):
                continue
            # manifests written before suppression existed have no count: none were suppressed
            landing[f"{name}.{stream.name}"] = {k: manifest.get(k, 0) for k in COUNTS}
    tables: dict[str, dict[str, int]] = {layer: {} for layer in LAYERS}
    views: dict[str, list[str]] = {layer: [] for layer in LAYERS}
    con = warehouse_connection(warehouse)
    try:
        cursor = con.cursor()
        layers = ", ".join(f"'{layer}'" for layer in LAYERS)
        cursor.execute(
            "SELECT lower(table_schema), lower(table_name), table_type FROM information_schema.tables"
            f" WHERE lower(table_schema) IN ({layers}) ORDER BY 1, 2"
        )
        for schema, table, table_type in cursor.fetchall():
            if table_type == "VIEW":
                views[schema].append(table)
                continue
            cursor.execute(f"SELECT count(*) FROM {schema}.{table}")
            tables[schema][table] = cursor.fetchone()[0]
    finally:
        con.close()
    return {"batch": batch, "landing": landing, "tables": tables, "views": views}


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"Landed (batch {summary['batch']}):"]
    for stream, counts in summary["landing"].items():
        lines.append(
            f"  {stream:<24} read {counts['read']:>8,}  landed {counts['landed']:>8,}"
            f"  quarantined {counts['quarantined']:>6,}  suppressed {counts['suppressed']:>6,}"
        )
    lines.append("Warehouse rows per layer (all batches; views not counted):")
    for layer, tables in summary["tables"].items():
        total = sum(tables.values())
        detail = ", ".join(f"{table} {rows:,}" for table, rows in tables.items())
        if summary["views"][layer]:
            detail += f"; views: {', '.join(summary['views'][layer])}"
        lines.append(f"  {layer:<7} {total:>9,}  ({detail})")
    return "\n".join(lines)
