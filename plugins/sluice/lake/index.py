"""The subject index: which files of a bronze table hold a given person, as Hudi's
record-level index says which file group holds a record key.

Per bronze table, a Delta table ``index/<source>/<stream>`` holds one row per (person,
file): ``subject_hash`` (64 bits of a salted SHA-256 of an identifier's type and
normalised value, for every identifier column the stream declares), and the data file
(relative to the bronze table) and its batch as partition columns, so which files are
indexed is read from the index's log. A bronze commit replaces its batch's entries in
one Delta transaction; an erasure replaces the entries of the files it rewrote. No raw
identifier is stored.

The index is checked against the bronze table before it is used: a batch whose indexed
files are not exactly the files the table holds for it is indexed again from those
files (:func:`verified_index`).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import posixpath
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sluice.core.sources import StreamConfig
from sluice.lake.commit import commit_with_retry
from sluice.lake.files import BATCH_COLUMN, bronze_table_path
from sluice.lake.storage import Lake

log = logging.getLogger(__name__)

INDEX_SCHEMA = pa.schema(
    [
        pa.field("subject_hash", pa.int64(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
        pa.field(BATCH_COLUMN, pa.string(), nullable=False),
    ]
)
#: rows per row group of an index file: small enough for a lookup to skip most of them
INDEX_ROW_GROUP = 4_096
#: threads reading, hashing and writing index files
WORKERS = 4
#: identifier types compared without case and surrounding blanks
CASELESS_TYPES = frozenset({"email"})


def normalise(kind: str, value: Any) -> str:
    """An identifier as it is hashed and compared: text; emails trimmed and lower-cased."""
    text = str(value)
    return text.strip().lower() if kind in CASELESS_TYPES else text


def _key(salt: bytes) -> str:
    """The secret prefix of every hashed message, derived from the salt (hex: safe in SQL)."""
    return hashlib.sha256(b"sluice-erasure:" + salt).hexdigest()


def subject_hash(kind: str, value: Any, salt: bytes) -> int:
    """The salted hash of one identifier: the first 64 bits of SHA-256 of ``<key>:<type>:
    <normalised value>``, as a signed integer (what :func:`hash_column` gives)."""
    digest = hashlib.sha256(f"{_key(salt)}:{kind}:{normalise(kind, value)}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@functools.cache
def _duckdb() -> Any:
    """One in-memory DuckDB per process for hashing (connecting costs ~15 ms)."""
    import duckdb

    return duckdb.connect()


def hash_column(values: pa.Array, kind: str, salt: bytes) -> pa.Array:
    """:func:`subject_hash` of every (normalised, text) value, vectorised by DuckDB."""
    prefix = f"{_key(salt)}:{kind}:"
    con = _duckdb().cursor()  # a cursor per call: callers may be on several threads
    try:
        identifier_values = pa.table({"v": values})  # noqa: F841 (read by DuckDB)
        sql = (
            "with h as (select cast(('0x' || left(sha256($1 || v), 16)) as ubigint)::hugeint as u"
            " from identifier_values) select cast(u - case when u >= 9223372036854775808"
            " then 18446744073709551616 else 0 end as bigint) from h"
        )
        return con.sql(sql, params=[prefix]).to_arrow_table().column(0).combine_chunks()
    finally:
        con.close()


def index_path(lake: Lake, source: str, stream: str) -> str:
    return lake.path("index", source, stream)


def normalised_column(column: pa.ChunkedArray | pa.Array, kind: str) -> pa.ChunkedArray | pa.Array:
    """A column's values as :func:`normalise` gives them, as text."""
    if kind in CASELESS_TYPES and pa.types.is_string(column.type):
        return pc.utf8_lower(pc.utf8_trim_whitespace(column))
    return pc.cast(column, pa.string())


def _column_values(column: pa.ChunkedArray, kind: str) -> pa.Array:
    return pc.unique(normalised_column(column.combine_chunks().drop_null(), kind))


def file_hashes(lake: Lake, path: str, stream: StreamConfig, salt: bytes) -> pa.Array:
    """The distinct hashes of every identifier a data file holds (only those columns are read)."""
    columns = stream.identifier_types
    with lake.fs.open_input_file(path) as file:
        parquet = pq.ParquetFile(file)
        present = [name for name in columns if name in parquet.schema_arrow.names]
        table = parquet.read(columns=present)
    hashes = in_parallel(
        lambda name: hash_column(_column_values(table.column(name), columns[name]), columns[name], salt), present
    )
    return pc.unique(pa.chunked_array(hashes, pa.int64()).combine_chunks()) if hashes else pa.array([], pa.int64())


def index_batch(lake: Lake, source: str, stream: StreamConfig, batch: str, files: Iterable[str], salt: bytes) -> int:
    """Replace the batch's entries with those of ``files`` (relative to the bronze table),
    in one transaction; returns the entries written."""
    return index_batches(lake, source, stream, {batch: files}, salt)


def in_parallel(function: Any, items: Iterable[Any]) -> list[Any]:
    """``function`` over ``items`` on a few threads (reading, hashing and writing Parquet
    release the GIL), in order."""
    from concurrent.futures import ThreadPoolExecutor

    items = list(items)
    if len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(len(items), WORKERS)) as pool:
        return list(pool.map(function, items))


def _entry_file(lake: Lake, folder: str, batch: str, name: str, hashes: pa.Array) -> Any:
    """Write one data file's entries, sorted (with small row groups, a lookup reads only
    the groups whose range holds a wanted hash); returns its add action."""
    import numpy as np
    from deltalake.transaction import AddAction

    from sluice.lake.bronze import file_stats

    values = hashes.to_numpy(zero_copy_only=False)
    if len(values) > 1 and not (values[1:] >= values[:-1]).all():  # a rewritten file's entries already are
        values = np.sort(values)
    entries = pa.table({"subject_hash": pa.array(values, pa.int64())})
    sink = io.BytesIO()
    # salted hashes are random bits: compressing or dictionary-encoding them gains nothing
    pq.write_table(entries, sink, compression="none", use_dictionary=False, row_group_size=INDEX_ROW_GROUP)
    payload = sink.getvalue()
    path = f"entries/{uuid.uuid4().hex}.parquet"
    lake.write_bytes(posixpath.join(folder, path), payload)
    stats = file_stats(pq.read_metadata(pa.BufferReader(payload)), ["subject_hash"])
    return AddAction(
        path=path,
        size=len(payload),
        partition_values={BATCH_COLUMN: batch, "file": name},
        modification_time=int(time.time() * 1000),
        data_change=True,
        stats=json.dumps(stats, separators=(",", ":")),
    )


def _entries(index: Any) -> list[tuple[str, str, str]]:
    """(index file, batch, data file) of every index file, from the index's log (index
    files as the log names them: URIs, read through ``unquote``)."""
    if index is None:
        return []
    actions = pa.table(index.get_add_actions(flatten=True))
    if not actions.num_rows:
        return []
    columns = ("path", f"partition.{BATCH_COLUMN}", "partition.file")
    return list(zip(*(actions.column(name).to_pylist() for name in columns), strict=True))


def _commit(
    lake: Lake,
    source: str,
    stream: str,
    written: list[tuple[str, str, pa.Array]],
    replaced: Any,
    index: Any = None,
) -> None:
    """Commit the entries ``written`` ((batch, data file, hashes) each) and remove, in the
    same transaction, the entries of every (batch, data file) ``replaced`` selects.

    :param index: the index table as the caller just read it (read here otherwise)
    """
    from deltalake import Schema
    from deltalake.transaction import RemoveAction, create_table_with_add_actions

    folder = index_path(lake, source, stream)
    adds = in_parallel(lambda item: _entry_file(lake, folder, *item), [item for item in written if len(item[2])])

    def attempt(number: int) -> None:
        table = index if number == 0 and index is not None else lake.delta_table(folder)
        if table is None:
            create_table_with_add_actions(
                lake.uri(folder),
                Schema.from_arrow(INDEX_SCHEMA),
                adds,
                mode="error",
                partition_by=[BATCH_COLUMN, "file"],
                configuration={"delta.dataSkippingNumIndexedCols": "1"},  # statistics of the hash only
                storage_options=dict(lake.storage_options),
            )
            return
        now = int(time.time() * 1000)
        removes = [
            RemoveAction(
                unquote(path),  # written to the log encoded again
                data_change=True,
                deletion_timestamp=now,
                partition_values={BATCH_COLUMN: batch, "file": name},
            )
            for path, batch, name in _entries(table)
            if replaced(batch, name)
        ]
        if removes or adds:
            table.create_write_transaction(
                removes + adds, mode="append", schema=table.schema(), partition_by=[BATCH_COLUMN, "file"]
            )

    commit_with_retry(attempt, f"the subject index of {source}.{stream}")


def index_batches(
    lake: Lake, source: str, stream: StreamConfig, files: Mapping[str, Iterable[str]], salt: bytes
) -> int:
    """Replace the entries of several batches (batch -> its files) in one transaction."""
    table_path = bronze_table_path(lake, source, stream.name)
    named = [(batch, name) for batch, names in sorted(files.items()) for name in sorted(names)]

    def entries(item: tuple[str, str]) -> tuple[str, str, pa.Array]:
        return (*item, file_hashes(lake, posixpath.join(table_path, item[1]), stream, salt))

    written = in_parallel(entries, named)
    batches = set(files)
    _commit(lake, source, stream.name, written, lambda batch, _: batch in batches)
    return sum(len(hashes) for _, _, hashes in written)


def reindex_rewritten(
    lake: Lake, source: str, stream: str, rewritten: Mapping[str, tuple[str, str | None]], erased: Iterable[int]
) -> int:
    """After an erasure: each rewritten file's entries, less the erased people's, under the
    new file's name (none when it was left empty), in one commit; nothing is read again
    but those files' index entries.

    :param rewritten: old file -> (batch, new file or None)
    """
    folder = index_path(lake, source, stream)
    erased_hashes = pa.array(sorted(set(erased)), pa.int64())
    index = lake.delta_table(folder)
    paths: dict[str, list[str]] = {}
    for path, _, name in _entries(index):
        paths.setdefault(name, []).append(path)

    def entries(old: str) -> tuple[str, str, pa.Array] | None:
        batch, new = rewritten[old]
        if new is None:
            return None
        kept = []
        for path in paths.get(old, ()):
            with lake.fs.open_input_file(posixpath.join(folder, unquote(path))) as file:
                hashes = pq.read_table(file).column("subject_hash").combine_chunks()
            kept.append(hashes.filter(pc.invert(pc.is_in(hashes, value_set=erased_hashes))))
        return batch, new, pa.concat_arrays(kept) if kept else pa.array([], pa.int64())

    written = [item for item in in_parallel(entries, sorted(rewritten)) if item is not None]
    _commit(lake, source, stream, written, lambda _, name: name in rewritten, index)
    return sum(len(hashes) for _, _, hashes in written)


def _indexed_files(index: Any) -> dict[str, set[str]]:
    """Batch -> files the index names (from its log: each file is a partition)."""
    by_batch: dict[str, set[str]] = {}
    for _, batch, name in _entries(index):
        by_batch.setdefault(batch, set()).add(name)
    return by_batch


def _table_files(table: Any, stream: StreamConfig) -> dict[str, set[str]]:
    """Batch -> the table's files holding an identifier (by their statistics: a file whose
    identifier columns are all null has no index entry)."""
    actions = pa.table(table.get_add_actions(flatten=True))
    by_batch: dict[str, set[str]] = {}
    if not actions.num_rows:
        return by_batch
    counts = actions.column("num_records")
    empty = pa.array([True] * actions.num_rows)
    for column in stream.identifier_types:
        nulls = f"null_count.{column}"
        if nulls not in actions.column_names:
            empty = pa.array([False] * actions.num_rows)
            break
        empty = pc.and_(empty, pc.fill_null(pc.equal(actions.column(nulls), counts), False))
    batches = actions.column(f"partition.{BATCH_COLUMN}").to_pylist()
    for name, batch, none in zip(actions.column("path").to_pylist(), batches, empty.to_pylist(), strict=True):
        by_batch.setdefault(batch, set())
        if not none:
            by_batch[batch].add(name)
    return by_batch


def verified_index(lake: Lake, source: str, stream: StreamConfig, salt: bytes, table: Any = None) -> list[str]:
    """Make the index agree with the bronze table; returns the batches indexed again.

    An entry for a file the table no longer holds, or a file of the table the index does
    not name, means the index missed a commit (a crash between the two, a table written
    by other means): that batch is indexed again from the table's files. Both sides are
    read from the tables' logs, not their data.

    :param table: the bronze table as the caller just read it (read here otherwise)
    """
    table = table or lake.delta_table(bronze_table_path(lake, source, stream.name))
    if table is None:
        return []
    indexed = _indexed_files(lake.delta_table(index_path(lake, source, stream.name)))
    held = _table_files(table, stream)
    stale = sorted(batch for batch in set(indexed) | set(held) if indexed.get(batch, set()) != held.get(batch, set()))
    if stale:
        log.warning(
            "the erasure index of %s.%s disagrees with batches %s: indexing them again", source, stream.name, stale
        )
        index_batches(lake, source, stream, {batch: held.get(batch, set()) for batch in stale}, salt)
    return stale


def files_holding(
    lake: Lake, source: str, stream: str, hashes: Iterable[int], batch: str | None = None
) -> dict[str, str]:
    """File (relative to the bronze table) -> batch, for every file holding one of ``hashes``
    (in ``batch`` only, when given: the other batches' index files are not read).

    Each index file is sorted, in small row groups: only the groups whose range holds a
    wanted hash are read, so a lookup of a few people reads a small part of the index."""
    import numpy as np

    wanted = np.array(sorted(set(hashes)), dtype=np.int64)
    folder = index_path(lake, source, stream)
    entries = [entry for entry in _entries(lake.delta_table(folder)) if batch is None or entry[1] == batch]
    if not len(wanted) or not entries:
        return {}
    value_set = pa.array(wanted)

    def holds(path: str) -> bool:
        with lake.fs.open_input_file(posixpath.join(folder, unquote(path))) as file:
            parquet = pq.ParquetFile(file)
            groups = []
            for number in range(parquet.metadata.num_row_groups):
                statistics = parquet.metadata.row_group(number).column(0).statistics
                if statistics is None or not statistics.has_min_max:
                    groups.append(number)
                    continue
                first = np.searchsorted(wanted, statistics.min)
                if first < len(wanted) and wanted[first] <= statistics.max:
                    groups.append(number)
            if not groups:
                return False
            found = parquet.read_row_groups(groups, columns=["subject_hash"]).column(0)
        return bool(pc.any(pc.is_in(found, value_set=value_set)).as_py())

    hits = in_parallel(lambda entry: holds(entry[0]), entries)
    return {name: held_in for (_, held_in, name), hit in zip(entries, hits, strict=True) if hit}


def identifier_hashes(identifiers: Mapping[str, Iterable[Any]], salt: bytes) -> set[int]:
    """The hashes of a person's identifiers, given by type."""
    return {subject_hash(kind, value, salt) for kind, values in identifiers.items() for value in values}


def rows_of_hashes(table: pa.Table, stream: StreamConfig, hashes: frozenset[int] | set[int], salt: bytes) -> pa.Array:
    """Rows of ``table`` whose identifier columns hash to one of ``hashes``."""
    mask = pa.array([False] * table.num_rows)
    wanted = pa.array(sorted(hashes), pa.int64())
    for column, kind in stream.identifiers:
        if column not in table.column_names:
            continue
        digests = hash_column(normalised_column(table.column(column).combine_chunks(), kind), kind, salt)
        mask = pc.or_(mask, pc.fill_null(pc.is_in(digests, value_set=wanted), False))
    return mask
