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
import logging
import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sluice.lake.files import BATCH_COLUMN, bronze_table_path
from sluice.lake.storage import Lake
from sluice.sources import StreamConfig

log = logging.getLogger(__name__)

INDEX_SCHEMA = pa.schema(
    [
        pa.field("subject_hash", pa.int64(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
        pa.field(BATCH_COLUMN, pa.string(), nullable=False),
    ]
)
#: rows per row group of an index file: small enough for a lookup to skip most of them
INDEX_ROW_GROUP = 16_384
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
    hashes = [hash_column(_column_values(table.column(name), columns[name]), columns[name], salt) for name in present]
    return pc.unique(pa.chunked_array(hashes, pa.int64()).combine_chunks()) if hashes else pa.array([], pa.int64())


def index_batch(lake: Lake, source: str, stream: StreamConfig, batch: str, files: Iterable[str], salt: bytes) -> int:
    """Replace the batch's entries with those of ``files`` (relative to the bronze table),
    in one transaction; returns the entries written."""
    return index_batches(lake, source, stream, {batch: files}, salt)


def _write(lake: Lake, source: str, stream: str, entries: pa.Table, predicate: str) -> None:
    """Replace the index entries ``predicate`` selects with ``entries``, in one commit."""
    from deltalake import WriterProperties, write_deltalake

    write_deltalake(
        lake.uri(index_path(lake, source, stream)),
        entries.sort_by("subject_hash"),  # with small row groups, their statistics prune lookups
        mode="overwrite",
        predicate=predicate,
        partition_by=[BATCH_COLUMN, "file"],
        storage_options=dict(lake.storage_options),
        configuration={"delta.dataSkippingNumIndexedCols": "1"},  # statistics of the hash only
        writer_properties=WriterProperties(max_row_group_size=INDEX_ROW_GROUP),
    )


def _quoted(values: Iterable[str]) -> str:
    return ", ".join("'" + value.replace("'", "''") + "'" for value in sorted(values))


def index_batches(
    lake: Lake, source: str, stream: StreamConfig, files: Mapping[str, Iterable[str]], salt: bytes
) -> int:
    """Replace the entries of several batches (batch -> its files) in one transaction."""
    table_path = bronze_table_path(lake, source, stream.name)
    parts = []
    for batch, names in sorted(files.items()):
        for name in sorted(names):
            digests = file_hashes(lake, posixpath.join(table_path, name), stream, salt)
            columns = [digests, pa.array([name] * len(digests), pa.string()), pa.array([batch] * len(digests))]
            parts.append(pa.table(columns, schema=INDEX_SCHEMA))
    entries = pa.concat_tables(parts) if parts else INDEX_SCHEMA.empty_table()
    _write(lake, source, stream.name, entries, f"{BATCH_COLUMN} in ({_quoted(files)})")
    return entries.num_rows


def reindex_rewritten(
    lake: Lake, source: str, stream: str, rewritten: Mapping[str, tuple[str, str | None]], erased: Iterable[int]
) -> int:
    """After an erasure: each rewritten file's entries, less the erased people's, under the
    new file's name (none when it was left empty), in one commit; nothing is read again
    but those files' index entries.

    :param rewritten: old file -> (batch, new file or None)
    """
    import pyarrow.dataset as ds

    index = lake.delta_table(index_path(lake, source, stream))
    old = sorted(rewritten)
    entries = index.to_pyarrow_dataset().to_table(filter=ds.field("file").isin(old))
    entries = entries.filter(
        pc.invert(pc.is_in(entries.column("subject_hash"), pa.array(sorted(set(erased)), pa.int64())))
    )
    renamed = pc.take(
        pa.array([rewritten[name][1] for name in old], pa.string()),
        pc.index_in(entries.column("file"), value_set=pa.array(old, pa.string())),
    )
    entries = entries.set_column(entries.schema.get_field_index("file"), "file", renamed).filter(pc.is_valid(renamed))
    new = [name for _, name in rewritten.values() if name is not None]  # the written rows must match it too
    _write(
        lake, source, stream, entries.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA), f"file in ({_quoted(old + new)})"
    )
    return entries.num_rows


def _indexed_files(index: Any) -> dict[str, set[str]]:
    """Batch -> files the index names (from its log: each file is a partition)."""
    if index is None:
        return {}
    actions = pa.table(index.get_add_actions(flatten=True))
    by_batch: dict[str, set[str]] = {}
    if actions.num_rows:
        batches = actions.column(f"partition.{BATCH_COLUMN}").to_pylist()
        for batch, name in zip(batches, actions.column("partition.file").to_pylist(), strict=True):
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


def verified_index(lake: Lake, source: str, stream: StreamConfig, salt: bytes) -> list[str]:
    """Make the index agree with the bronze table; returns the batches indexed again.

    An entry for a file the table no longer holds, or a file of the table the index does
    not name, means the index missed a commit (a crash between the two, a table written
    by other means): that batch is indexed again from the table's files. Both sides are
    read from the tables' logs, not their data.
    """
    table = lake.delta_table(bronze_table_path(lake, source, stream.name))
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
    (in ``batch`` only, when given: the other batches' index files are not read)."""
    import pyarrow.dataset as ds

    index = lake.delta_table(index_path(lake, source, stream))
    wanted = sorted(set(hashes))
    if index is None or not wanted:
        return {}
    where = ds.field("subject_hash").isin(wanted)
    if batch is not None:
        where = (ds.field(BATCH_COLUMN) == batch) & where
    found = index.to_pyarrow_dataset().to_table(columns=["file", BATCH_COLUMN], filter=where)
    return dict(zip(found.column("file").to_pylist(), found.column(BATCH_COLUMN).to_pylist(), strict=True))


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
