"""Purge what an erasure leaves behind in the lake, once the retention has passed.

- The data files the erasure commit removed stay for readers of older table versions:
  ``vacuum`` deletes them once ``retention_hours`` have passed (0: at once).
- The Delta log still describes them (add actions with statistics of the files as
  they were): a checkpoint of the current version, then the log entries before it are
  deleted (``delta.logRetentionDuration`` is set to the same retention).
- The subject index: its replaced entries sit in old files and log entries the same way.
- Quarantined records are raw records: the people's records are removed from the
  quarantine files of every stream of the source.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sluice.core.sources import SourceConfig
from sluice.lake.files import bronze_table_path
from sluice.lake.index import CASELESS_TYPES, index_path, normalise
from sluice.lake.storage import Lake

log = logging.getLogger(__name__)


def purge_table(lake: Lake, path: str, retention_hours: int) -> int:
    """Vacuum a Delta table and drop its log before a new checkpoint; files deleted."""
    table = lake.delta_table(path)
    if table is None:
        return 0
    table.alter.set_table_properties(
        {"delta.logRetentionDuration": f"interval {retention_hours} hours"}, raise_if_not_exists=False
    )
    deleted = table.vacuum(retention_hours=retention_hours, enforce_retention_duration=False, dry_run=False)
    table.update_incremental()
    table.create_checkpoint()
    table.cleanup_metadata()
    return len(deleted)


def _record_matches(
    record: Mapping[str, Any], text: str, types: Mapping[str, str], identifiers: Mapping[str, set[str]]
) -> bool:
    """A quarantined record holds one of the people's identifiers: in a declared column,
    or (for emails) anywhere in its text."""
    data = record.get("data") if isinstance(record.get("data"), dict) else record
    for column, kind in types.items():
        value = data.get(column)
        if value is not None and normalise(kind, value) in identifiers.get(kind, set()):
            return True
    lowered = text.lower()
    return any(value in lowered for kind in CASELESS_TYPES for value in identifiers.get(kind, ()))


def scrub_quarantine(lake: Lake, source: SourceConfig, identifiers: Mapping[str, set[str]]) -> int:
    """Remove the people's records from the source's quarantine files; records removed."""
    from pyarrow.fs import FileSelector, FileType

    folder = lake.path("quarantine", source.name)
    infos = lake.fs.get_file_info(FileSelector(folder, recursive=True, allow_not_found=True))
    removed = 0
    for info in infos:
        if info.type != FileType.File or not info.path.endswith(".parquet"):
            continue
        stream = posixpath.relpath(info.path, folder).split("/")[0]
        types = next((s.identifier_types for s in source.streams if s.name == stream), {})
        with lake.fs.open_input_file(info.path) as file:
            table = pq.read_table(file)
        texts = table.column("_airbyte_data").to_pylist()
        keep = [not _record_matches(_parsed(text), text or "", types, identifiers) for text in texts]
        if all(keep):
            continue
        removed += keep.count(False)
        kept = table.filter(pa.array(keep))
        if kept.num_rows:
            sink = pa.BufferOutputStream()
            pq.write_table(kept, sink, compression="zstd")
            lake.write_bytes(info.path, sink.getvalue().to_pybytes())
        else:
            lake.delete_files([info.path])
    return removed


def _parsed(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def purge_source(
    lake: Lake, source: SourceConfig, identifiers: Mapping[str, set[str]], retention_hours: int, streams: Iterable[str]
) -> dict[str, int]:
    """Purge the tables of ``streams`` (bronze and index) and the source's quarantine."""
    files = 0
    for stream in streams:
        files += purge_table(lake, bronze_table_path(lake, source.name, stream), retention_hours)
        files += purge_table(lake, index_path(lake, source.name, stream), retention_hours)
    return {"files_deleted": files, "quarantined_records_removed": scrub_quarantine(lake, source, identifiers)}
