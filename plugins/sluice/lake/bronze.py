"""Commit landed files to the bronze Delta table ``bronze/<source>/<stream>``, without copying.

The table is partitioned by ``_sluice_batch``. A landing writes its Parquet files into
the batch's partition folder; a commit registers them as Delta add actions in one
transaction that replaces exactly the batch's partition, so it is atomic and a rerun
replaces the batch (the files it replaces become tombstones, deleted by vacuum once
``SLUICE_BRONZE_RETENTION_HOURS`` have passed). Nothing is read or written again but
the files' Parquet footers, for the add actions' statistics.

:func:`register_files` is the one way files enter a bronze table; the ingestion pipeline
(:mod:`sluice.ingest.commit`) calls it with the files any driver landed and the rows it
counted. The record key and data-subject
key are declared in the table's configuration, where erasure and readers find them.
"""

from __future__ import annotations

import json
import logging
import math
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sluice.core import config
from sluice.core.batch import batch_start
from sluice.core.sources import StreamConfig
from sluice.lake.commit import commit_with_retry
from sluice.lake.files import BATCH_COLUMN, active_files, bronze_table_path
from sluice.lake.storage import Lake

__all__ = ["BATCH_COLUMN", "BronzeCommitError", "bronze_table_path", "register_files"]

#: Keeps rewrites (erasure) from collapsing a table into a few huge files.
TARGET_FILE_SIZE = 128 * 1024 * 1024

log = logging.getLogger(__name__)


class BronzeCommitError(RuntimeError):
    """Landed files could not be committed; they stay landed, nothing was committed."""


def declared_keys(stream: StreamConfig) -> dict[str, str]:
    """Table properties naming the stream's keys (``sluice.*``)."""
    properties = {"sluice.recordKey": ",".join(stream.record_key)}
    if stream.subject_key:
        properties["sluice.subjectKey"] = stream.subject_key
    if stream.cursor_field:
        properties["sluice.cursorField"] = stream.cursor_field
    return properties


def min_max_columns(schema: pa.Schema, record_key: Sequence[str]) -> list[str]:
    """Top-level columns whose minimum and maximum go into the statistics.

    Numbers, booleans, dates, zoned timestamps and the record key. Never other strings:
    they may be personal data, and the Delta log is not erased with the rows. Structs
    and lists carry none either (their strings are nested inside).
    """

    def fits(field: pa.Field) -> bool:
        t = field.type
        if field.name in record_key:
            return True
        if pa.types.is_timestamp(t):
            return t.tz is not None
        return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_date32(t)

    return [field.name for field in schema if fits(field)]


def _stat_value(value: Any, upper: bool) -> Any:
    """A Parquet statistic as the Delta log writes it; None when it cannot be kept exactly."""
    if isinstance(value, datetime):  # Delta keeps milliseconds: round outwards
        value = value.astimezone(UTC)
        extra = value.microsecond % 1000
        value -= timedelta(microseconds=extra)
        if upper and extra:
            value += timedelta(milliseconds=1)
        return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value if isinstance(value, bool | int | str) else None


def file_stats(metadata: pq.FileMetaData, min_max: Sequence[str]) -> dict[str, Any]:
    """Delta statistics of a Parquet file from its footer: numRecords, nullCount per
    top-level column, and minValues/maxValues of the ``min_max`` columns only."""
    stats: dict[str, Any] = {"numRecords": metadata.num_rows, "minValues": {}, "maxValues": {}, "nullCount": {}}
    top_level = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
    for name, index in top_level.items():
        if "." in name:
            continue
        chunks = [metadata.row_group(g).column(index).statistics for g in range(metadata.num_row_groups)]
        if any(chunk is None or chunk.null_count is None for chunk in chunks):
            continue
        stats["nullCount"][name] = sum(chunk.null_count for chunk in chunks)
        if name not in min_max:
            continue
        with_values = [chunk for chunk in chunks if chunk.has_min_max]
        exact = all(
            getattr(chunk, "is_min_value_exact", True) and getattr(chunk, "is_max_value_exact", True)
            for chunk in with_values
        )
        if with_values and exact:
            low = _stat_value(min(chunk.min for chunk in with_values), upper=False)
            high = _stat_value(max(chunk.max for chunk in with_values), upper=True)
            if low is not None and high is not None:
                stats["minValues"][name], stats["maxValues"][name] = low, high
    return stats


@dataclass(frozen=True)
class LandedFile:
    """One landed Parquet file, described by its footer."""

    path: str  # relative to the table root, as add actions name files
    size: int
    modified_ms: int
    rows: int
    schema: pa.Schema
    metadata: pq.FileMetaData


def _table_relative(lake: Lake, path: str, table_path: str, batch: str) -> str:
    """``path`` relative to the table root, where add actions name files; it must be a
    data file of the table's folder, and not in another batch's partition folder."""
    relative = posixpath.relpath(posixpath.normpath(path), posixpath.normpath(table_path))
    folders = relative.split("/")[:-1]
    partition = f"{BATCH_COLUMN}={batch}"
    outside = relative.startswith("../") or any(
        folder.startswith(("_", ".")) and folder != partition for folder in folders
    )
    if outside:
        raise BronzeCommitError(
            f"{lake.uri(path)} is not a data file of {lake.uri(table_path)}:"
            f" a table references files in its own folder (outside _delta_log and other batches' folders),"
            " without copying"
        )
    return relative


def _describe(lake: Lake, path: str, table_path: str, batch: str) -> LandedFile:
    from pyarrow.fs import FileType

    relative = _table_relative(lake, path, table_path, batch)
    info = lake.fs.get_file_info(path)
    if info.type != FileType.File:
        raise BronzeCommitError(f"landed file {lake.uri(path)} is missing")
    try:
        with lake.fs.open_input_file(path) as file:
            metadata = pq.read_metadata(file)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BronzeCommitError(f"landed file {lake.uri(path)} is not Parquet ({exc}); nothing was committed") from exc
    return LandedFile(
        path=relative,
        size=info.size,
        modified_ms=info.mtime_ns // 1_000_000,
        rows=metadata.num_rows,
        schema=metadata.schema.to_arrow_schema(),
        metadata=metadata,
    )


def _type_key(delta_type: Any) -> Any:
    """A Delta type without nullability and metadata, to compare types."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            ignored = ("nullable", "metadata", "containsNull", "valueContainsNull")
            return {k: strip(v) for k, v in value.items() if k not in ignored}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(json.loads(delta_type.to_json()))


def _type_name(delta_type: Any) -> str:
    key = _type_key(delta_type)
    return key if isinstance(key, str) else json.dumps(key, separators=(",", ":"))


def _conflict(table_name: str, column: str, landed: Any, existing: Any, where: str) -> BronzeCommitError:
    return BronzeCommitError(
        f"{table_name}: landed column {column!r} is {_type_name(landed)} but {where} has {_type_name(existing)}; "
        "nothing was committed and the landed files stay in place"
    )


def _landed_schema(files: Sequence[LandedFile], table_name: str) -> pa.Schema:
    """The files' columns, in first-seen order; one type per column or a clear error."""
    from deltalake import Schema

    fields: dict[str, pa.Field] = {}
    types: dict[str, Any] = {}
    for landed in files:
        for field, delta_field in zip(landed.schema, Schema.from_arrow(landed.schema).fields, strict=True):
            if field.name == BATCH_COLUMN:
                raise BronzeCommitError(f"{table_name}: landed files must not hold the partition column {BATCH_COLUMN}")
            if field.name not in fields:
                fields[field.name], types[field.name] = field, delta_field.type
            elif _type_key(types[field.name]) != _type_key(delta_field.type):
                raise _conflict(table_name, field.name, delta_field.type, types[field.name], "another landed file")
    return pa.schema(list(fields.values()))


def _add_new_columns(table: Any, schema: pa.Schema, table_name: str) -> list[str]:
    """Add the landed columns the table lacks; fail on a column whose type differs.

    A write transaction does not evolve the schema: columns are added before the commit.
    """
    from deltalake import Field, Schema

    existing = {field.name: field.type for field in table.schema().fields}
    new = []
    for field in Schema.from_arrow(schema).fields:
        if field.name not in existing:
            new.append(Field(field.name, field.type, nullable=True))
        elif _type_key(field.type) != _type_key(existing[field.name]):
            raise _conflict(table_name, field.name, field.type, existing[field.name], "the table")
    if new:
        table.alter.add_columns(new)
    return [field.name for field in new]


def _vacuum(lake: Lake, table: Any, table_path: str) -> int:
    """Delete files removed longer ago than the retention; returns how many."""
    hours = config.bronze_retention_hours()
    expired = table.vacuum(retention_hours=hours, enforce_retention_duration=False, dry_run=True)
    # tombstones stay listed after their files are gone; vacuuming only those would still
    # add two log entries
    present = [path for path in (posixpath.join(table_path, name) for name in expired) if lake.exists(path)]
    if not present:
        return 0
    table.vacuum(retention_hours=hours, enforce_retention_duration=False, dry_run=False)
    return sum(1 for path in present if not lake.exists(path))


def register_files(
    lake: Lake,
    source: str,
    stream: StreamConfig,
    batch: str,
    files: Sequence[str],
    landed_rows: int | None = None,
) -> dict[str, Any]:
    """Make ``files`` the batch's partition of the bronze table, in one transaction.

    :param files: landed Parquet files (paths on the lake's filesystem) under the table's
        folder: in the batch's partition folder (see :func:`sluice.lake.files.batch_folder`)
        or a folder of the driver's not starting with ``_``; without the partition column
    :param landed_rows: rows the driver landed; the commit fails if the files hold others
    :returns: rows, table version, files and bytes registered, files vacuumed, and the
        registered files' paths relative to the table
    :raises BronzeCommitError: a file outside the table's folder, missing or not Parquet, a row count
        that does not match, or a column whose type conflicts with the table's
    """
    from deltalake.transaction import AddAction

    batch_start(batch)  # the partition value and folder embed it: accept only a well-formed id
    table_path = bronze_table_path(lake, source, stream.name)
    table_name = f"bronze.{source}.{stream.name}"
    if not files:
        raise BronzeCommitError(f"{table_name}: no files to commit for batch {batch}")
    landed = [_describe(lake, str(path), table_path, batch) for path in files]
    rows = sum(f.rows for f in landed)
    if landed_rows is not None and rows != landed_rows:
        raise BronzeCommitError(f"{table_name}: the landed files of batch {batch} hold {rows} rows, not {landed_rows}")
    schema = _landed_schema(landed, table_name)
    min_max = min_max_columns(schema, stream.record_key)
    actions = [
        AddAction(
            path=f.path,
            size=f.size,
            partition_values={BATCH_COLUMN: batch},
            modification_time=f.modified_ms,
            data_change=True,
            stats=json.dumps(file_stats(f.metadata, min_max), separators=(",", ":")),
        )
        for f in landed
    ]
    # a commit of another partition merges by itself; a lost race starts from the table as it is now
    table = commit_with_retry(
        lambda _: _commit(lake, table_path, table_name, stream, batch, schema, actions), table_name
    )
    version = table.version()
    vacuumed = _vacuum(lake, table, table_path)
    return {
        "rows": rows,
        "version": version,
        "files": len(landed),
        "bytes": sum(f.size for f in landed),
        "vacuumed": vacuumed,
        "paths": [f.path for f in landed],
    }


def _commit(
    lake: Lake,
    table_path: str,
    table_name: str,
    stream: StreamConfig,
    batch: str,
    schema: pa.Schema,
    actions: list[Any],
) -> Any:
    """Replace the batch's partition with ``actions`` (creating the table if need be) and
    declare the stream's keys; returns the table as committed."""
    from deltalake import Schema
    from deltalake.transaction import create_table_with_add_actions

    table = lake.delta_table(table_path)
    if table is not None:
        if _add_new_columns(table, schema, table_name):
            table.update_incremental()
        if active_files(table, batch) != {a.path for a in actions}:  # a retried commit changes nothing
            table.create_write_transaction(
                actions,
                mode="overwrite",
                schema=table.schema(),
                partition_by=[BATCH_COLUMN],
                partition_filters=[(BATCH_COLUMN, "=", batch)],
            )
            table.update_incremental()  # each request to S3 costs tens of ms: read only the new log entries
    else:
        create_table_with_add_actions(
            lake.uri(table_path),
            Schema.from_arrow(schema.append(pa.field(BATCH_COLUMN, pa.string(), nullable=False))),
            actions,
            mode="error",
            partition_by=[BATCH_COLUMN],
            name=table_name,
            # only delta.* keys are accepted at creation; sluice.* ones go through ALTER
            configuration={"delta.targetFileSize": str(TARGET_FILE_SIZE)},
            storage_options=dict(lake.storage_options),
        )
        table = lake.delta_table(table_path)
    current = table.metadata().configuration
    changed = {name: value for name, value in declared_keys(stream).items() if current.get(name) != value}
    if changed:
        table.alter.set_table_properties(changed, raise_if_not_exists=False)
        table.update_incremental()
    return table
