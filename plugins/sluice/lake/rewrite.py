"""Erase people from the lake's bronze tables: per table, one atomic commit that rewrites
only the files the subject index names.

Each file holding one of the people is read, its other rows are written to a new file
in the same batch partition, and one Delta transaction removes the old files and adds
the new ones (a file left empty is only removed). Other files are not touched. The
index entries of the batches concerned are replaced after the commit. A commit that
loses a race with a concurrent writer (an ingestion commit of the same table) is
prepared again from the table as it then is.

The removed files stay on disk for readers of older versions until the purge vacuums
them (:mod:`sluice.erasure.purge`).
"""

from __future__ import annotations

import functools
import io
import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sluice.core.sources import StreamConfig
from sluice.lake.commit import COMMIT_ATTEMPTS, TryAgain, commit_with_retry, lost_race
from sluice.lake.files import BATCH_COLUMN, bronze_table_path
from sluice.lake.index import (
    files_holding,
    identifier_hashes,
    in_parallel,
    normalise,
    normalised_column,
    reindex_rewritten,
    verified_index,
)
from sluice.lake.storage import Lake

log = logging.getLogger(__name__)


class ErasureError(RuntimeError):
    """An erasure could not complete; what it committed stands, a rerun completes it."""


@dataclass
class TableErasure:
    """What erasing people from one table did."""

    table: str
    files_holding: int = 0
    files_rewritten: int = 0
    rows_removed: int = 0
    version: int | None = None
    batches: list[str] = field(default_factory=list)


def matches(table: pa.Table, stream: StreamConfig, identifiers: Mapping[str, Iterable[Any]]) -> pa.Array:
    """Rows whose identifier columns hold one of the people's identifiers (by type)."""
    mask = pa.array([False] * table.num_rows)
    for column, kind in stream.identifiers:
        values = {normalise(kind, value) for value in identifiers.get(kind, ())}
        if not values or column not in table.column_names:
            continue
        data = normalised_column(table.column(column), kind)
        mask = pc.or_(mask, pc.fill_null(pc.is_in(data, value_set=pa.array(sorted(values))), False))
    return mask


def repetitive_columns(table: pa.Table, sample: int = 4096) -> list[str]:
    """Columns worth dictionary-encoding: those whose values repeat in a sample of rows (a
    dictionary of unique values, such as ids and emails, makes the file larger and its
    writing 4x slower)."""
    head = table.slice(0, sample)
    return [
        name
        for name, column in zip(head.column_names, head.columns, strict=True)
        if not pa.types.is_nested(column.type) and pc.count_distinct(column).as_py() <= head.num_rows // 2
    ]


def _rewrite(lake: Lake, table_path: str, erased: Any, min_max: list[str], file: tuple[str, str]) -> tuple[Any, int]:
    """The file (name, batch) without the rows ``erased`` marks: (its add action or None
    when left empty, rows removed)."""
    from deltalake.transaction import AddAction

    from sluice.lake.bronze import file_stats

    name, batch = file
    with lake.fs.open_input_file(f"{table_path}/{name}") as file:
        data = pq.read_table(file)
    keep = data.filter(pc.invert(erased(data)))
    removed = data.num_rows - keep.num_rows
    if keep.num_rows == 0:
        return None, removed
    sink = io.BytesIO()
    pq.write_table(keep, sink, compression="zstd", use_dictionary=repetitive_columns(keep))
    payload = sink.getvalue()
    new_name = f"{BATCH_COLUMN}={batch}/erased-{uuid.uuid4().hex}.parquet"
    lake.write_bytes(f"{table_path}/{new_name}", payload)
    metadata = pq.read_metadata(pa.BufferReader(payload))
    action = AddAction(
        path=new_name,
        size=len(payload),
        partition_values={BATCH_COLUMN: batch},
        modification_time=int(time.time() * 1000),
        data_change=True,
        stats=json.dumps(file_stats(metadata, min_max), separators=(",", ":")),
    )
    return action, removed


def erase_from_table(
    lake: Lake, source: str, stream: StreamConfig, identifiers: Mapping[str, Iterable[Any]], salt: bytes
) -> TableErasure:
    """Remove every row of the people (identifiers by type) from one bronze table.

    :returns: files that held them, files rewritten, rows removed, the table version
    """
    hashes = identifier_hashes({kind: identifiers.get(kind, ()) for _, kind in stream.identifiers}, salt)
    return _erase(lake, source, stream, hashes, lambda data: matches(data, stream, identifiers), salt)


def drop_suppressed(lake: Lake, source: str, stream: StreamConfig, batch: str, salt: bytes) -> TableErasure:
    """Remove erased people's records from a batch just committed: those a driver landed
    without dropping them (an Airbyte server's destination writes its own files)."""
    from sluice.lake.index import rows_of_hashes
    from sluice.lake.suppression import suppressed_hashes

    hashes = suppressed_hashes(lake)
    if not hashes:
        return TableErasure(f"{source}/{stream.name}")
    return _erase(lake, source, stream, hashes, lambda data: rows_of_hashes(data, stream, hashes, salt), salt, batch)


def _erase(
    lake: Lake,
    source: str,
    stream: StreamConfig,
    hashes: set[int] | frozenset[int],
    erased: Any,
    salt: bytes,
    batch: str | None = None,
) -> TableErasure:
    """Rewrite the files the index names for ``hashes`` without the rows ``erased`` marks."""
    from deltalake.transaction import RemoveAction

    from sluice.lake.bronze import min_max_columns

    result = TableErasure(f"{source}/{stream.name}")
    table_path = bronze_table_path(lake, source, stream.name)
    table = lake.delta_table(table_path)
    if table is None:
        return result
    # a pass ends with a commit, or with nothing left to erase; a concurrent commit that
    # came first (or brought the people in again) makes another pass
    verified = table.version()
    verified_index(lake, source, stream, salt, table)

    def one_pass(number: int) -> TableErasure:
        holding = files_holding(lake, source, stream.name, hashes, batch)
        if not holding:
            return result
        if number:
            table.update_incremental()
        schema = table.schema()
        min_max = min_max_columns(pa.schema(schema.to_arrow()), stream.record_key)
        now = int(time.time() * 1000)
        actions, written, removed, rewritten = [], [], 0, {}
        files = sorted(holding.items())
        outcomes = in_parallel(functools.partial(_rewrite, lake, table_path, erased, min_max), files)
        for (name, held_in), (add, rows) in zip(files, outcomes, strict=True):
            removed += rows
            partition = {BATCH_COLUMN: held_in}
            actions.append(RemoveAction(name, data_change=True, deletion_timestamp=now, partition_values=partition))
            rewritten[name] = (held_in, add.path if add is not None else None)
            if add is not None:
                actions.append(add)
                written.append(add.path)
        try:
            table.create_write_transaction(actions, mode="append", schema=schema, partition_by=[BATCH_COLUMN])
        except Exception as error:
            if lost_race(error):
                lake.delete_files([f"{table_path}/{path}" for path in written])  # nobody references them
            raise
        table.update_incremental()
        result.version = table.version()
        result.rows_removed += removed
        result.files_holding += len(holding)
        result.files_rewritten += len(holding)
        result.batches = sorted(set(result.batches) | set(holding.values()))
        reindex_rewritten(lake, source, stream.name, rewritten, hashes)
        if result.version != verified + 1:
            # another commit came since the index was checked against the table: it may
            # have brought files holding them
            raise TryAgain(f"table version {result.version}, checked at {verified}")
        return result

    try:
        return commit_with_retry(one_pass, result.table)
    except Exception as error:
        if lost_race(error):
            raise ErasureError(
                f"{result.table}: still holds the people after {COMMIT_ATTEMPTS} passes (concurrent writers)"
            ) from error
        raise
