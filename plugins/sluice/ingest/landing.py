"""Land one batch of a source's records as Parquet, once, where the bronze table keeps them.

Layout (file names as Airbyte's S3 destination writes them, plus an attempt token)::

    bronze/<source>/<stream>/_sluice_batch=<batch>/<YYYY>_<MM>_<DD>_<EPOCH>_<attempt>_<n>.parquet
    landing/<source>/<stream>/batch=<batch>.json          the manifest: counts and files
    quarantine/<source>/<stream>/batch=<batch>/part-00000.parquet
    state/<source>/batch=<batch>.json

Data files are written straight into the bronze table's partition folder, where the
bronze commit (:mod:`sluice.lake.bronze`) registers them without copying; no reader sees
them before that commit. Every attempt writes new file names, so it never overwrites a
file that a committed table version references. The manifest is the landing's publish
point: written last, whole (a temporary file renamed in a folder, one PUT on S3), after
the quarantine.
An attempt first deletes what killed attempts of the same batch left (files that no
table version and no manifest references), and once published, the files of the
manifest it replaced that were never committed.

Records come one at a time (:meth:`BatchLanding.add`, Airbyte records) or as Arrow
tables (:meth:`BatchLanding.add_batch`, the files driver's readers), the latter staged per
input (:meth:`BatchLanding.staged`): an input refused half-way leaves none of its records
landed or counted, its staged Parquet part deleted before anything references it.

Records that cannot be landed (no record key, a value that does not fit the stream's
schema, an undeclared stream) go to quarantine with the reason; records of people who
were erased are dropped and counted as suppressed; per stream, read = landed +
quarantined + suppressed, or publishing fails.
"""

from __future__ import annotations

import contextlib
import json
import logging
import posixpath
import queue
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sluice.core.batch import batch_start
from sluice.core.sources import StreamConfig
from sluice.ingest.schema import AIRBYTE_META_TYPE, EXTRACTED_AT_TYPE, METADATA_FIELDS, UNMAPPED_FIELD, StreamSchema
from sluice.lake.files import batch_folder, bronze_table_path, remove_unreferenced_files
from sluice.lake.rewrite import repetitive_columns
from sluice.lake.storage import Lake

log = logging.getLogger(__name__)

QUARANTINE_FILE = "part-00000.parquet"
QUARANTINE_SCHEMA = pa.schema(
    [
        ("_airbyte_raw_id", pa.string()),
        ("_airbyte_extracted_at", EXTRACTED_AT_TYPE),
        ("_sluice_reason", pa.string()),
        ("_airbyte_data", pa.string()),
    ]
)
_RAW_ID_NAMESPACE = uuid.UUID("6b1f8e1c-5a43-4c1e-9f59-3c0b6f3d2a10")
#: Arrow bytes of :meth:`BatchLanding.add_batch` tables gathered into one Parquet row group
#: (bounds memory: about four such groups are held at a time, whatever the input's size;
#: smaller groups leave the writer thread less to do once the last input is read)
GROUP_BYTES = 8 << 20
#: the two hex digits of each byte value, as one native 16-bit word each
_HEX_PAIRS = np.frombuffer("".join(f"{i:02x}" for i in range(256)).encode(), dtype=np.uint16)
_CHANGE_TYPE = AIRBYTE_META_TYPE.field("changes").type.value_type


class LandingError(RuntimeError):
    """Counts did not reconcile or a batch could not be published."""


@dataclass
class StreamCounts:
    read: int = 0
    landed: int = 0
    quarantined: int = 0
    #: records of erased people, dropped (:mod:`sluice.lake.suppression`)
    suppressed: int = 0


def quarantine_folder(lake: Lake, source: str, stream: str, batch: str) -> str:
    return lake.path("quarantine", source, stream, f"batch={batch}")


def manifest_path(lake: Lake, source: str, stream: str, batch: str) -> str:
    return lake.path("landing", source, stream, f"batch={batch}.json")


def write_manifest(lake: Lake, manifest: Mapping[str, Any]) -> None:
    """Publish a stream's batch: its manifest, written whole (see :func:`read_manifest`)."""
    path = manifest_path(lake, manifest["source"], manifest["stream"], manifest["batch"])
    lake.write_bytes(path, json.dumps(manifest, indent=2).encode())


def read_manifest(lake: Lake, source: str, stream: str, batch: str) -> dict[str, Any]:
    """The published landing of a stream's batch: source, stream, batch, attempt, read,
    landed, quarantined, bytes and files (paths relative to the lake root, in part order).
    """
    path = manifest_path(lake, source, stream, batch)
    manifest = lake.read_json(path)
    if manifest is None:
        raise LandingError(f"batch {batch} of {source}.{stream} has not been landed (no {lake.uri(path)})")
    return manifest


def landed_files(lake: Lake, source: str, stream: str, batch: str) -> list[str]:
    """Parquet files (paths on the lake's filesystem) of a published batch, in part order;
    raises if it was never landed."""
    return [lake.path(name) for name in read_manifest(lake, source, stream, batch)["files"]]


def _parse_temporal(values: pa.ChunkedArray, arrow_type: pa.DataType) -> pa.ChunkedArray:
    """Parse ISO strings; a zoned timestamp written without an offset is read as UTC.

    Airbyte destinations do the same, and some connectors (source-faker among them)
    emit ``timestamp_with_timezone`` values without an offset.
    """
    if pa.types.is_timestamp(arrow_type) and arrow_type.tz is not None:
        has_offset = pc.match_substring_regex(values, r"(Z|[+-]\d\d:?\d\d)$")
        values = pc.if_else(pc.fill_null(has_offset, True), values, pc.binary_join_element_wise(values, "Z", ""))
    return values.cast(arrow_type)


def _raw_ids(prefix: str, start: int, count: int) -> pa.Array:
    """``f"{prefix}{position:012x}"`` for the positions ``start`` onwards, built as bytes
    (no Python string per record)."""
    head = np.frombuffer(prefix.encode("ascii"), np.uint8)
    width = len(head) + 12
    out = np.empty((count, width), np.uint8)
    out[:, : len(head)] = head
    pairs = out[:, len(head) :].view(np.uint16)
    positions = np.arange(start, start + count, dtype=np.uint64)
    for k in range(6):
        pairs[:, 5 - k] = _HEX_PAIRS[(positions >> np.uint64(8 * k)) & np.uint64(255)]
    offsets = np.arange(0, (count + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(out))


def _constant(value: int, count: int, data_type: pa.DataType | None = None) -> pa.Array:
    """``count`` times the integer ``value`` (an int64 column unless ``data_type`` says),
    from a buffer: ``pa.array`` would import pandas to look at its argument."""
    data_type = data_type or pa.int64()
    values = np.full(count, value, np.int32 if data_type == pa.int32() else np.int64)
    return pa.Array.from_buffers(data_type, count, [None, pa.py_buffer(values)])


def _landed_schema(data: pa.Schema) -> pa.Schema:
    return pa.schema([*METADATA_FIELDS, *data, UNMAPPED_FIELD])


class _QuarantineBuffer:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, raw_id: str, emitted_at: int, reason: str, data: Any) -> None:
        self.rows.append(
            {
                "_airbyte_raw_id": raw_id,
                "_airbyte_extracted_at": int(emitted_at) * 1000,  # Airbyte's milliseconds
                "_sluice_reason": reason,
                "_airbyte_data": json.dumps(data, default=str),
            }
        )

    def write(self, lake: Lake, folder: str) -> None:
        """Replace the batch's quarantine file; with no rows, remove the one a run before left."""
        path = posixpath.join(folder, QUARANTINE_FILE)
        if self.rows:
            sink = pa.BufferOutputStream()
            pq.write_table(pa.Table.from_pylist(self.rows, schema=QUARANTINE_SCHEMA), sink, compression="zstd")
            lake.write_bytes(path, sink.getvalue().to_pybytes())
        elif lake.exists(path):
            lake.delete_files([path])


@dataclass
class _Buffer:
    """Records of one stream waiting to become Arrow, with their metadata, by position."""

    data: list[dict[str, Any]] = field(default_factory=list)
    extra: list[str | None] = field(default_factory=list)
    emitted: list[int] = field(default_factory=list)
    metas: list[dict[str, Any]] = field(default_factory=list)
    raw_ids: list[str] = field(default_factory=list)


class _BackgroundWriter:
    """One thread that converts and writes buffers while the connector's output is read.

    Without it, every conversion stalls the reader, the pipe fills and the connector
    waits. The queue is short, so memory stays bounded by a few buffers.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sluice-landing-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    job()
            except BaseException as exc:  # re-raised in the reading thread
                self._error = exc
            finally:
                self._queue.task_done()

    def submit(self, job: Callable[[], None]) -> None:
        self.raise_error()
        self._queue.put(job)

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def drain(self) -> None:
        """Wait until every submitted job ran; raise the first error of any."""
        self._queue.join()
        self.raise_error()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()


class _Part:
    """One Parquet part of :meth:`BatchLanding.add_batch` tables, of one schema.

    Opened, written, closed and deleted in the writer thread; ``rows`` counts what was
    handed to it, in the reading thread.
    """

    def __init__(self, lake: Lake, path: str, schema: pa.Schema) -> None:
        self.lake, self.path, self.schema = lake, path, schema
        self.rows = 0
        self.bytes = 0  # once closed
        self.closed = False
        self._sink: Any = None
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            # a dictionary only for columns whose values repeat: one of unique values (the
            # raw ids, ids, emails) costs more to write than it saves
            self._sink = self.lake.open_output_stream(self.path)
            dictionary = [*repetitive_columns(table), "_airbyte_meta.sync_id"] if table.num_rows else True
            self._writer = pq.ParquetWriter(self._sink, self.schema, compression="zstd", use_dictionary=dictionary)
        if table.num_rows:
            self._writer.write_table(table, row_group_size=table.num_rows)

    def close(self) -> None:
        if self.closed:
            return
        if self._writer is None:  # an empty part still holds its schema
            self.write(self.schema.empty_table())
        assert self._writer is not None
        self._writer.close()
        self.bytes = self._sink.tell()
        self._sink.close()  # on S3 the object appears only now
        self.closed = True

    def delete(self) -> None:
        with contextlib.suppress(Exception):  # a half-written part is deleted below anyway
            if self._writer is not None and not self.closed:
                self._writer.close()
                self._sink.close()
        self.closed = True
        self.lake.delete_files([self.path])


@dataclass
class _Stage:
    """One input's records (a file of the files driver) until it is kept or dropped: its
    counts, its quarantined records, its tables not written yet and its own parts (an
    input too large to wait in memory is written to parts of its own as it is read)."""

    read: int = 0
    landed: int = 0
    suppressed: int = 0
    quarantine: _QuarantineBuffer = field(default_factory=_QuarantineBuffer)
    pending: list[pa.Table] = field(default_factory=list)
    pending_bytes: int = 0
    parts: list[_Part] = field(default_factory=list)


class _StreamWriter:
    """Buffers one stream's records and writes them as Parquet parts."""

    def __init__(
        self,
        lake: Lake,
        folder: str,
        name_prefix: str,
        stream: StreamConfig,
        schema: StreamSchema,
        raw_id_prefix: str,
        sync_id: int,
        buffer_rows: int,
        rows_per_file: int,
        submit: Callable[[Callable[[], None]], None],
        suppressed: frozenset[str] = frozenset(),
    ) -> None:
        self.lake = lake
        self.suppressed = suppressed
        self.folder = folder
        self.name_prefix = name_prefix
        self.stream = stream
        self.schema = schema
        self.landed_schema = schema.landed
        self.build_schema = schema.build_schema
        self.known = frozenset(schema.data.names)
        # a UUIDv5 of source/stream/batch whose last 12 hex digits are the record's position:
        # deterministic like uuid5 per record, at the cost of one string format
        self.raw_id_prefix = str(uuid.uuid5(_RAW_ID_NAMESPACE, raw_id_prefix))[:-12]
        self.meta = {"sync_id": sync_id, "changes": []}
        self.buffer_rows = buffer_rows
        self.rows_per_file = rows_per_file
        self.submit = submit
        self.counts = StreamCounts()
        self.quarantine = _QuarantineBuffer()
        self.files: list[str] = []
        self.bytes = 0  # of the closed files
        self._writer: pq.ParquetWriter | None = None
        self._sink: Any = None
        self._rows_in_file = 0
        self._buffer = _Buffer()
        self._numbers = 0  # of the parts opened, named in order
        self._opened: list[str] = []  # every part this attempt opened, kept or not
        # add_batch: the input being read, the kept parts, and the tables of kept inputs
        # too small for a part of their own, waiting for the shared part
        self._stage: _Stage | None = None
        self._parts: list[_Part] = []
        self._shared: _Part | None = None
        self._pending: list[pa.Table] = []
        self._pending_bytes = 0
        self._convert: Callable[[pa.Table, pa.Schema], pa.Table] | None = None

    def add(self, record: Mapping[str, Any]) -> None:
        data = record.get("data")
        raw_id = f"{self.raw_id_prefix}{self.counts.read:012x}"
        self.counts.read += 1
        emitted_at = record.get("emitted_at") or 0
        if not isinstance(data, dict):
            self.quarantine.add(raw_id, emitted_at, "record data is not a JSON object", data)
            return
        buffer = self._buffer
        if not self.known.issuperset(data):
            extra = {k: v for k, v in data.items() if k not in self.known}
            buffer.extra.append(json.dumps(extra, default=str))
        else:
            buffer.extra.append(None)
        if self.schema.json_columns:
            data = dict(data)
            for column in self.schema.json_columns:
                value = data.get(column)
                if value is not None and not isinstance(value, str):
                    data[column] = json.dumps(value)
        buffer.data.append(data)
        buffer.emitted.append(int(emitted_at))
        meta = record.get("meta")
        buffer.metas.append({**self.meta, "changes": meta.get("changes", [])} if meta else self.meta)
        buffer.raw_ids.append(raw_id)
        if len(buffer.data) >= self.buffer_rows:
            self.flush()

    def reject(self, reason: str, data: Any, emitted_at: int = 0) -> None:
        """Count one read record that cannot be landed and quarantine it with ``reason``."""
        stage = self._stage
        if stage is not None:  # goes, or stays, with its input
            stage.quarantine.add(self._raw_id(self.counts.read + stage.read), emitted_at, reason, data)
            stage.read += 1
            return
        self.quarantine.add(self._raw_id(self.counts.read), emitted_at, reason, data)
        self.counts.read += 1

    def _raw_id(self, position: int) -> str:
        return f"{self.raw_id_prefix}{position:012x}"

    # -- Arrow tables (add_batch), staged per input -------------------------------------

    def begin_stage(self) -> None:
        if self._stage is not None:
            raise LandingError(f"{self.stream.name}: an input is already staged")
        self._stage = _Stage()

    def add_batch(self, table: pa.Table, emitted_at: int) -> None:
        """Land an Arrow table of records (data columns only), vectorised: rows without
        their record key are quarantined, rows of erased people dropped, the rest gets
        the metadata columns and waits for a row group."""
        stage = self._stage
        if stage is None:
            self.begin_stage()
            self.add_batch(table, emitted_at)
            self.keep_stage()
            return
        count = table.num_rows
        if count == 0:
            return
        start = self.counts.read + stage.read
        stage.read += count
        for name, arrow_type in self.schema.parsed.items():
            index = table.schema.get_field_index(name)
            if index >= 0 and pa.types.is_string(table.schema.field(index).type):
                table = table.set_column(index, name, _parse_temporal(table.column(name), arrow_type))
        ids = _raw_ids(self.raw_id_prefix, start, count)
        key = self.stream.record_key
        if not set(key) <= set(table.column_names):
            missing = pc.is_valid(ids)  # every row
        else:
            missing = pc.is_null(table.column(key[0]))
            for column in key[1:]:
                missing = pc.or_(missing, pc.is_null(table.column(column)))
        if pc.any(missing).as_py():
            reason = f"record key {self.stream.key_name!r} is missing"
            positions = np.flatnonzero(missing.to_numpy(zero_copy_only=False))
            for position, row in zip(positions, table.filter(missing).to_pylist(), strict=True):
                stage.quarantine.add(self._raw_id(start + int(position)), emitted_at, reason, row)
            keep = pc.invert(missing)
            table, ids = table.filter(keep), ids.filter(keep)
            count = table.num_rows
            if count == 0:
                return
        columns = [
            ids,
            # Airbyte's milliseconds, stored in microseconds like every timestamp of a Delta table
            _constant(int(emitted_at) * 1000, count, EXTRACTED_AT_TYPE),
            _constant(0, count),
            pa.StructArray.from_arrays(
                [
                    _constant(self.meta["sync_id"], count),
                    pa.ListArray.from_arrays(_constant(0, count + 1, pa.int32()), pa.nulls(0, _CHANGE_TYPE)),
                ],
                fields=list(AIRBYTE_META_TYPE),
            ),
            *table.columns,
            pa.nulls(count, pa.string()),
        ]
        landed = pa.Table.from_arrays(columns, schema=_landed_schema(table.schema))
        if self.suppressed and self.stream.identifiers:
            from sluice.core import config
            from sluice.lake.index import rows_of_hashes

            erased = rows_of_hashes(landed, self.stream, self.suppressed, config.erasure_salt())
            stage.suppressed += pc.sum(erased).as_py() or 0
            landed = landed.filter(pc.invert(erased))
        stage.landed += landed.num_rows
        stage.pending.append(landed)
        stage.pending_bytes += landed.nbytes
        if stage.pending_bytes >= GROUP_BYTES:  # too large to wait: the input gets parts of its own
            self._write_pending(stage.pending, stage.parts, False)
            stage.pending, stage.pending_bytes = [], 0

    def keep_stage(self) -> None:
        """The staged input is whole: its records count and land."""
        stage, self._stage = self._stage, None
        if stage is None:
            raise LandingError(f"{self.stream.name}: no input is staged")
        self.counts.read += stage.read
        self.counts.landed += stage.landed
        self.counts.suppressed += stage.suppressed
        self.quarantine.rows.extend(stage.quarantine.rows)
        if stage.parts:
            self._write_pending(stage.pending, stage.parts, False)
            last = stage.parts[-1]
            self.submit(last.close)
            self._parts.extend(stage.parts)
            self.files.extend(part.path for part in stage.parts)
            return
        self._pending.extend(stage.pending)
        self._pending_bytes += stage.pending_bytes
        if self._pending_bytes >= GROUP_BYTES:
            self._write_shared()

    def drop_stage(self) -> None:
        """The staged input is refused: none of its records lands or counts; its parts go."""
        stage, self._stage = self._stage, None
        if stage is not None and stage.parts:
            parts = stage.parts
            self.submit(lambda: [part.delete() for part in parts])

    def settle_schema(
        self, schema: StreamSchema, convert: Callable[[pa.Table, pa.Schema], pa.Table] | None = None
    ) -> None:
        """The stream's schema, known once every input is read: parts written before a
        column was added or widened are rewritten to it at :meth:`close`, their data
        columns through ``convert(table, data_schema)``."""
        self.schema = schema
        self.landed_schema = schema.landed
        self.build_schema = schema.build_schema
        self.known = frozenset(schema.data.names)
        self._convert = convert

    def _new_part(self, schema: pa.Schema) -> _Part:
        path = posixpath.join(self.folder, f"{self.name_prefix}{self._numbers}.parquet")
        self._numbers += 1
        self._opened.append(path)
        return _Part(self.lake, path, schema)

    def _write_pending(self, tables: list[pa.Table], parts: list[_Part], shared: bool) -> None:
        """Hand ``tables`` to the writer thread as row groups of the last of ``parts``; a
        new part starts when the schema changes or the part is full."""
        runs: list[list[pa.Table]] = []
        for table in tables:
            if runs and runs[-1][0].schema.equals(table.schema, check_metadata=True):
                runs[-1].append(table)
            else:
                runs.append([table])
        for run in runs:
            schema = run[0].schema
            part = parts[-1] if parts else None
            if part is None or not part.schema.equals(schema, check_metadata=True) or part.rows >= self.rows_per_file:
                if part is not None:
                    self.submit(part.close)
                part = self._new_part(schema)
                parts.append(part)
                if shared:
                    self._shared = part
                    self._parts.append(part)
                    self.files.append(part.path)
            group = pa.concat_tables(run) if len(run) > 1 else run[0]
            part.rows += group.num_rows
            self.submit(lambda part=part, group=group: part.write(group))

    def _write_shared(self) -> None:
        parts = [self._shared] if self._shared is not None else []
        self._write_pending(self._pending, parts, True)
        self._pending, self._pending_bytes = [], 0

    def finish(self) -> None:
        """Hand over the kept inputs' tables still waiting, in the settled schema, and
        close the shared part; call before the writer thread is drained."""
        if self._stage is not None:
            raise LandingError(f"{self.stream.name}: an input is still staged")
        if self._pending:
            self._pending = [self._to_schema(table) for table in self._pending]
            self._write_shared()
        if self._shared is not None:
            self.submit(self._shared.close)
            self._shared = None

    def _to_schema(self, table: pa.Table) -> pa.Table:
        """A landed table in the settled schema (its metadata columns as they are)."""
        if table.schema.equals(self.landed_schema, check_metadata=True):
            return table
        data = table.select(list(range(len(METADATA_FIELDS), table.num_columns - 1)))
        target = self.schema.data
        if self._convert is not None:
            data = self._convert(data, target)
        else:
            data = pa.table(
                [
                    data.column(f.name).cast(f.type) if f.name in data.column_names else pa.nulls(len(data), f.type)
                    for f in target
                ],
                schema=target,
            )
        head, unmapped = table.columns[: len(METADATA_FIELDS)], table.column(table.num_columns - 1)
        return pa.Table.from_arrays([*head, *data.columns, unmapped], schema=self.landed_schema)

    def _rewrite_parts(self) -> None:
        """Rewrite, in the settled schema, the kept parts written before it was known."""
        for i, part in enumerate(self._parts):
            if part.schema.equals(self.landed_schema, check_metadata=True):
                continue
            new = self._new_part(self.landed_schema)
            with self.lake.fs.open_input_file(part.path) as source:
                for batch in pq.ParquetFile(source).iter_batches(batch_size=100_000):
                    new.write(self._to_schema(pa.Table.from_batches([batch])))
            new.rows = part.rows
            new.close()
            self._parts[i] = new
            self.files[self.files.index(part.path)] = new.path
            self.lake.delete_files([part.path])

    def flush(self) -> None:
        """Hand the buffered records to the writer and start a new buffer."""
        if self._buffer.data:
            buffer, self._buffer = self._buffer, _Buffer()
            self.submit(lambda: self._write_buffer(buffer))

    def _build(self, rows: list[dict[str, Any]]) -> pa.Table:
        table = pa.Table.from_pylist(rows, schema=self.build_schema)
        for name, arrow_type in self.schema.parsed.items():
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, _parse_temporal(table.column(name), arrow_type))
        return table

    def _build_isolating_bad_rows(self, buffer: _Buffer) -> tuple[pa.Table, list[int]]:
        """Build the buffer; on a conversion error, find and quarantine the bad rows."""
        try:
            return self._build(buffer.data), list(range(len(buffer.data)))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            pass
        good_tables, good_rows = [], []
        for i, row in enumerate(buffer.data):
            try:
                good_tables.append(self._build([row]))
                good_rows.append(i)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
                reason = f"does not fit the stream schema: {exc}"
                self.quarantine.add(buffer.raw_ids[i], buffer.emitted[i], reason, row)
        if not good_tables:
            return self.build_schema.empty_table(), []
        return pa.concat_tables(good_tables), good_rows

    def _write_buffer(self, buffer: _Buffer) -> None:
        table, rows = self._build_isolating_bad_rows(buffer)
        key = self.stream.record_key
        if not set(key) <= set(table.column_names):
            missing = rows
        else:
            null_keys = pc.is_null(table.column(key[0]))
            for column in key[1:]:
                null_keys = pc.or_(null_keys, pc.is_null(table.column(column)))
            missing = [rows[i] for i in null_keys.to_numpy(zero_copy_only=False).nonzero()[0]]
            if missing:
                table = table.filter(pc.invert(null_keys))
        for i in missing:
            reason = f"record key {self.stream.key_name!r} is missing"
            self.quarantine.add(buffer.raw_ids[i], buffer.emitted[i], reason, buffer.data[i])
        keep = sorted(set(rows) - set(missing))
        columns = {
            "_airbyte_raw_id": pa.array([buffer.raw_ids[i] for i in keep], pa.string()),
            # Airbyte's milliseconds, stored in microseconds like every timestamp of a Delta table
            "_airbyte_extracted_at": pa.array([buffer.emitted[i] for i in keep], pa.int64())
            .cast(pa.timestamp("ms", tz="UTC"))
            .cast(EXTRACTED_AT_TYPE),
            "_airbyte_generation_id": pa.array([0] * len(keep), pa.int64()),
            "_airbyte_meta": pa.array([buffer.metas[i] for i in keep], AIRBYTE_META_TYPE),
        }
        columns.update({name: table.column(name) for name in self.schema.data.names})
        columns["_sluice_unmapped"] = pa.array([buffer.extra[i] for i in keep], pa.string())
        landed = pa.Table.from_pydict(columns, schema=self.landed_schema)
        if self.suppressed and self.stream.identifiers:
            from sluice.core import config
            from sluice.lake.index import rows_of_hashes

            erased = rows_of_hashes(landed, self.stream, self.suppressed, config.erasure_salt())
            self.counts.suppressed += pc.sum(erased).as_py() or 0
            landed = landed.filter(pc.invert(erased))
        self._write(landed)

    def _open(self) -> pq.ParquetWriter:
        path = posixpath.join(self.folder, f"{self.name_prefix}{self._numbers}.parquet")
        self._numbers += 1
        self._opened.append(path)
        self.files.append(path)
        self._rows_in_file = 0
        self._sink = self.lake.open_output_stream(path)
        return pq.ParquetWriter(self._sink, self.landed_schema, compression="zstd")

    def _close_file(self) -> None:
        if self._sink.closed:
            return
        self._writer.close()
        self.bytes += self._sink.tell()  # what was written: no request to ask the store
        self._sink.close()  # the writer leaves it open; on S3 the object appears only now

    def _write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._writer = self._open()
        elif self._rows_in_file >= self.rows_per_file:
            self._close_file()
            self._writer = self._open()
        self._writer.write_table(table)
        self._rows_in_file += table.num_rows
        self.counts.landed += table.num_rows

    def close(self) -> StreamCounts:
        """Close the last file; call once every submitted buffer has been written."""
        if self._writer is not None:
            self._close_file()
        self._rewrite_parts()
        self.bytes += sum(part.bytes for part in self._parts)
        if not self.files:  # an empty stream still lands one file: its schema
            self._writer = self._open()
            self._close_file()
        self.counts.quarantined = len(self.quarantine.rows)
        return self.counts

    def manifest(self, source: str, batch: str, attempt: str) -> dict[str, Any]:
        return {
            "source": source,
            "stream": self.stream.name,
            "batch": batch,
            "attempt": attempt,
            **asdict(self.counts),
            "bytes": self.bytes,
            "files": [self.lake.relative(path) for path in self.files],
        }

    def discard(self) -> None:
        """Close and delete this attempt's files (nothing references them yet)."""
        if self._writer is not None:
            with contextlib.suppress(Exception):  # a half-written file is deleted below anyway
                self._close_file()
        for part in [*self._parts, *(self._stage.parts if self._stage else [])]:
            with contextlib.suppress(Exception):
                part.delete()
        self.lake.delete_files(self._opened)


class BatchLanding:
    """Collects one batch of a source's records and publishes them atomically.

    :param lake: the lake (``bronze/``, ``landing/``, ``quarantine/``, ``state/``)
    :param source: source name, the first path level under ``landing/`` and ``bronze/``
    :param batch: batch id of the data interval (see :mod:`sluice.core.batch`)
    :param streams: stream name -> (declared stream, Arrow schema from the catalog)
    :param buffer_rows: records converted to Arrow at a time (bounds memory)
    :param rows_per_file: rows per Parquet part before a new part starts
    """

    def __init__(
        self,
        lake: Lake,
        source: str,
        batch: str,
        streams: Mapping[str, tuple[StreamConfig, StreamSchema]],
        buffer_rows: int = 20_000,
        rows_per_file: int = 2_000_000,
    ) -> None:
        self.lake = lake
        self.source = source
        self.batch = batch
        start = batch_start(batch)
        epoch_ms = int(start.timestamp() * 1000)
        #: new file names for every attempt: none overwrites a file a table version references
        self.attempt = uuid.uuid4().hex[:8]
        prefix = f"{start:%Y_%m_%d}_{epoch_ms}_{self.attempt}_"
        self._published: set[str] = set()
        self.writers: dict[str, _StreamWriter] = {}
        self._remove_leftovers(streams)
        self._background = _BackgroundWriter()
        from sluice.lake.suppression import suppressed_hashes

        suppressed = suppressed_hashes(lake)
        for name, (stream, schema) in streams.items():
            folder = batch_folder(bronze_table_path(lake, source, name), batch)
            self.writers[name] = _StreamWriter(
                lake,
                folder,
                prefix,
                stream,
                schema,
                f"{source}/{name}/{batch}",
                epoch_ms,
                buffer_rows,
                rows_per_file,
                self._background.submit,
                suppressed,
            )
        self.undeclared = _QuarantineBuffer()
        self.undeclared_read = 0

    def add(self, record: Mapping[str, Any]) -> None:
        """Add the ``record`` part of an Airbyte RECORD message."""
        writer = self.writers.get(record.get("stream"))
        if writer is None:
            self.undeclared_read += 1
            raw_id = f"{self.source}/{record.get('stream')}/{self.batch}/{self.undeclared_read}"
            self.undeclared.add(raw_id, record.get("emitted_at") or 0, "stream is not declared for this source", record)
            return
        writer.add(record)

    def add_all(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            self.add(record)

    def reject(self, stream: str, reason: str, data: Any, emitted_at: int = 0) -> None:
        """Count one read record of ``stream`` that a driver could not make a record of (an
        unparsable line, an unreadable file) and quarantine it with ``reason``."""
        self.writers[stream].reject(reason, data, emitted_at)

    def add_batch(self, stream: str, table: pa.Table, emitted_at: int = 0) -> None:
        """Add records of ``stream`` as an Arrow table of their data columns, all emitted
        at ``emitted_at`` (milliseconds), with no Python per record: a row without its
        record key is quarantined, one of an erased person dropped and counted.

        The table's columns land as they are (their types, their order); tables whose
        schemas differ go to different parts until :meth:`settle_schema` gives the one
        they all end in. Do not feed a stream through both :meth:`add` and this.
        """
        writer = self.writers.get(stream)
        if writer is None:
            for row in table.to_pylist():
                self.add({"stream": stream, "data": row, "emitted_at": emitted_at})
            return
        writer.add_batch(table, emitted_at)

    @contextlib.contextmanager
    def staged(self, stream: str) -> Iterator[None]:
        """The records :meth:`add_batch` and :meth:`reject` get inside the block are one
        input's (a file): if the block raises, none of them lands or counts, and the Parquet
        written for them is deleted (no manifest ever named it); else they are kept."""
        writer = self.writers[stream]
        writer.begin_stage()
        try:
            yield
        except BaseException:
            writer.drop_stage()
            raise
        writer.keep_stage()

    def settle_schema(
        self, stream: str, schema: StreamSchema, convert: Callable[[pa.Table, pa.Schema], pa.Table] | None = None
    ) -> None:
        """The schema every part of ``stream`` ends in, once its last input is read: a part
        written in an earlier schema is rewritten at :meth:`publish`, its data columns
        through ``convert(table, schema.data)`` (by default: by name, cast, a missing column
        null)."""
        self.writers[stream].settle_schema(schema, convert)

    def publish(
        self, state: list[dict[str, Any]] | None, extra: Mapping[str, Mapping[str, Any]] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Close the files, check the counts, write quarantine and manifests, save the state.

        :param state: the connector's last state messages, saved for the next batch
        :param extra: per stream, keys a driver publishes in the manifest with the landing
            (the files driver's ledger of the files it took)
        :returns: per stream, the manifest (see :func:`read_manifest`)
        """
        for writer in self.writers.values():
            writer.flush()
            writer.finish()
        self._background.drain()
        self._background.stop()
        manifests = {}
        for name, writer in self.writers.items():
            counts = writer.close()
            if counts.read != counts.landed + counts.quarantined + counts.suppressed:
                raise LandingError(
                    f"{self.source}.{name}: read {counts.read} != landed + quarantined + suppressed {counts}"
                )
            manifests[name] = {**writer.manifest(self.source, self.batch, self.attempt), **(extra or {}).get(name, {})}
        for name, writer in self.writers.items():
            # a run of the batch that started meanwhile removes this attempt's files as a killed
            # attempt's: then publish nothing, over that run's quarantine and manifest least of all
            if missing := [path for path in writer.files if not self.lake.exists(path)]:
                raise LandingError(
                    f"{self.source}.{name} batch {self.batch}: {len(missing)} file(s) of this attempt were removed "
                    f"before it published ({self.lake.uri(missing[0])}): another run of the batch started meanwhile"
                )
        for name, writer in self.writers.items():
            writer.quarantine.write(self.lake, quarantine_folder(self.lake, self.source, name, self.batch))
        self.undeclared.write(self.lake, quarantine_folder(self.lake, self.source, "_undeclared", self.batch))
        replaced = {}
        for name, manifest in manifests.items():
            path = manifest_path(self.lake, self.source, name, self.batch)
            replaced[name] = self.lake.read_json(path)
            write_manifest(self.lake, manifest)
            self._published.add(name)
        save_state(self.lake, self.source, self.batch, state or [])
        for name, manifest in manifests.items():
            if replaced[name]:
                try:  # the replaced manifest's files, unless a table version references them
                    self._remove_unreferenced(name, manifest)
                except Exception:  # the batch is published; the next attempt tries again
                    log.warning("could not remove the replaced landing of %s.%s", self.source, name, exc_info=True)
        return manifests

    def abort(self) -> None:
        """Stop writing and delete this attempt's files of every stream it did not publish."""
        self._background.stop()
        for name, writer in self.writers.items():
            if name not in self._published:
                try:
                    writer.discard()
                except Exception:  # the lake may be what failed; the next attempt removes them
                    log.warning("could not remove %s.%s's failed attempt's files", self.source, name, exc_info=True)

    def _remove_unreferenced(self, stream: str, manifest: dict[str, Any] | None) -> None:
        table_path = bronze_table_path(self.lake, self.source, stream)
        table = self.lake.relative(table_path) + "/"
        keep = [name[len(table) :] for name in (manifest or {}).get("files", []) if name.startswith(table)]
        remove_unreferenced_files(self.lake, table_path, self.batch, keep)

    def _remove_leftovers(self, streams: Iterable[str]) -> None:
        """Delete what killed attempts of this batch left: unreferenced files, temporaries.

        The files of the current manifest stay: a commit may still register them.
        """
        lake = self.lake
        lake.remove_stale_temporaries(_state_path(lake, self.source, self.batch))
        for stream in [*streams, "_undeclared"]:
            folder = quarantine_folder(lake, self.source, stream, self.batch)
            lake.remove_stale_temporaries(posixpath.join(folder, QUARANTINE_FILE))
        for stream in streams:
            path = manifest_path(lake, self.source, stream, self.batch)
            lake.remove_stale_temporaries(path)
            self._remove_unreferenced(stream, lake.read_json(path))


def _state_path(lake: Lake, source: str, batch: str) -> str:
    return lake.path("state", source, f"batch={batch}.json")


def save_state(lake: Lake, source: str, batch: str, state: list[dict[str, Any]]) -> None:
    lake.write_bytes(_state_path(lake, source, batch), json.dumps(state, indent=2).encode())


def state_before(lake: Lake, source: str, batch: str) -> list[dict[str, Any]]:
    """Connector state left by the latest batch before ``batch`` (empty for the first).

    A rerun of a batch starts from the same state as its first run did, so it reads the
    same records and replaces the batch instead of finding nothing new.
    """
    earlier = [
        path
        for path in lake.list_files(lake.path("state", source))
        if (name := posixpath.basename(path)).startswith("batch=")
        and name.endswith(".json")
        and name[len("batch=") : -len(".json")] < batch
    ]
    return json.loads(lake.read_bytes(earlier[-1])) if earlier else []
