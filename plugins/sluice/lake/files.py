"""Where a bronze table's data files live, and which of them the table still references.

A driver writes its Parquet files under the bronze table's folder, where the bronze
commit registers them without copying: the local driver into the batch's partition
folder (``bronze/<source>/<stream>/_sluice_batch=<batch>/``), an Airbyte server's S3
destination into a folder of its own (``bronze/<source>/<stream>/airbyte/``). A file
belongs to a batch by its add action's partition value, not by its folder. Until the
commit, files are invisible to readers: a Delta reader sees only the files its log
references.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable
from typing import Any

from sluice.lake.storage import Lake

BATCH_COLUMN = "_sluice_batch"

log = logging.getLogger(__name__)


def bronze_table_path(lake: Lake, source: str, stream: str) -> str:
    return lake.path("bronze", source, stream)


def bronze_table(lake: Lake, source: str, stream: str) -> Any:
    """The bronze Delta table of a stream; LookupError when no batch was committed yet."""
    table_path = bronze_table_path(lake, source, stream)
    table = lake.delta_table(table_path)
    if table is None:
        raise LookupError(f"no bronze table at {lake.uri(table_path)}: commit a batch of {source}.{stream} first")
    return table


def batch_folder(table_path: str, batch: str) -> str:
    """The partition folder of ``batch``; add actions name files relative to the table."""
    return posixpath.join(table_path, f"{BATCH_COLUMN}={batch}")


def _in_batch(paths: list[str], batch: str) -> set[str]:
    prefix = f"{BATCH_COLUMN}={batch}/"
    return {path for path in paths if path.startswith(prefix)}


def active_files(table: Any, batch: str) -> set[str]:
    """Paths (relative to the table) of the batch's files in the table's current version."""
    import pyarrow as pa

    actions = pa.table(table.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return set()
    paths = actions.column("path").to_pylist()
    batches = actions.column(f"partition.{BATCH_COLUMN}").to_pylist()
    return {path for path, value in zip(paths, batches, strict=True) if value == batch}


def referenced_files(lake: Lake, table_path: str, batch: str) -> set[str]:
    """Paths (relative to the table) of the batch's files that the table references.

    Active files of the current version and the tombstones of its partition folder
    (removed files kept for readers of older versions until vacuum deletes them). Empty
    when there is no table yet.
    """
    table = lake.delta_table(table_path)
    if table is None:
        return set()
    tombstoned = table.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=True)
    return active_files(table, batch) | _in_batch(tombstoned, batch)


def remove_unreferenced_files(lake: Lake, table_path: str, batch: str, keep: Iterable[str] = ()) -> list[str]:
    """Delete files of the batch's folder that no table version references.

    They are what killed or superseded landing attempts left. ``keep`` names files (relative
    to the table) that must stay though the table does not reference them yet: the
    files of the batch's current landing manifest, which a commit may still register.
    """
    present = lake.list_files(batch_folder(table_path, batch))
    if not present:
        return []
    wanted = referenced_files(lake, table_path, batch) | set(keep)
    removed = [path for path in present if posixpath.relpath(path, table_path) not in wanted]
    lake.delete_files(removed)
    if removed:
        log.info("removed %d unreferenced file(s) from %s", len(removed), lake.uri(batch_folder(table_path, batch)))
    return removed
