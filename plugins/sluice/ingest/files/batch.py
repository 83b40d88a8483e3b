"""One batch of a ``files`` source: files dropped under the lake's
``inbox/<source>/<stream>/``, read by native readers (:mod:`.readers`), taken once by path
and content hash (:mod:`.ledger`), landed through :class:`sluice.ingest.landing.BatchLanding`.

Each file is read once, streaming: its records go to the landing as Arrow tables, in the
stream's schema as far as it is known (:meth:`_Stream.fit`), staged per file
(:meth:`BatchLanding.staged`), so a file refused half-way (not well-formed, failing its XSD,
a compression bomb) leaves none of its records landed. The stream's schema settles once
its last file is read; parts written before a column was added or widened are rewritten
to it when the batch publishes (only a batch whose files disagree pays for that).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.core.sources import FileFormat, SourceConfig, StreamConfig
from sluice.ingest.files import readers
from sluice.ingest.files.ledger import TAKEN, Classifier, Listed, list_inbox, sha256_of, taken_by_others
from sluice.ingest.files.readers import conform, conform_table, map_leaves, merge_fields
from sluice.ingest.landing import BatchLanding, LandingError, read_manifest
from sluice.ingest.schema import StreamSchema
from sluice.lake.storage import Lake, LakeAccessError


def _plain(data_type: pa.DataType) -> pa.DataType:
    """Delta's Arrow types (large strings, views) as the readers produce them."""
    if pa.types.is_large_string(data_type) or pa.types.is_string_view(data_type):
        return pa.string()
    if pa.types.is_large_binary(data_type) or pa.types.is_binary_view(data_type):
        return pa.binary()
    if pa.types.is_struct(data_type):
        return pa.struct([f.with_type(_plain(f.type)) for f in data_type])
    if pa.types.is_large_list(data_type) or pa.types.is_list(data_type):
        return pa.list_(_plain(data_type.value_type))
    return data_type


def table_fields(lake: Lake, source: str, stream: str) -> list[pa.Field]:
    """The data columns of the stream's bronze table (none before its first commit): the
    types earlier batches gave the stream, which a batch's files do not change."""
    from sluice.lake.files import bronze_table_path

    table = lake.delta_table(bronze_table_path(lake, source, stream))
    if table is None:
        return []
    fields = pa.schema(table.schema().to_arrow())
    return [f.with_type(_plain(f.type)) for f in fields if not f.name.startswith(("_airbyte_", "_sluice_"))]


def _no_nulls(data_type: pa.DataType) -> pa.DataType:
    """A column that was null in every file lands as text (a Delta table has no null type)."""
    return map_leaves(data_type, lambda t: pa.string() if pa.types.is_null(t) else t)


class _Stream:
    """One stream's files of the batch, its schema and its ledger entries."""

    def __init__(self, source: SourceConfig, stream: StreamConfig, lake: Lake, plan: _Plan) -> None:
        if stream.files is None:
            raise LandingError(f"{source.name}.{stream.name} declares no format")
        self.source, self.stream, self.lake = source, stream, lake
        #: the ledger entries: a rerun's from the start, a new batch's as its files are classified
        self.entries = plan.entries
        self.classifier, self.listed = plan.classifier, plan.listed
        self.fmt: FileFormat = stream.files
        self.xsd = readers.load_xsd(self.fmt.xsd) if self.fmt.xsd else None
        self.fields: list[pa.Field] = table_fields(lake, source.name, stream.name)
        self.fixed = frozenset(f.name for f in self.fields)  # the bronze table's types stay
        self.lines: set[str] = set()  # JSON Lines files read line by line

    def records(self, entry: dict[str, Any]) -> Iterator[readers.Arrow | readers.Rows | readers.Reject]:
        path = self.lake.path(entry["path"])
        open_ = readers.opener(self.lake, path, entry["size"], self.fmt)
        kind = self.fmt.format
        if kind == "jsonl":
            return readers.read_jsonl(open_, self.fmt, lines=entry["path"] in self.lines)
        if kind == "json":
            return readers.read_json_array(open_)
        if kind == "csv":
            return readers.read_csv(open_, self.fmt)
        return readers.read_xml(open_, self.fmt, self.xsd)

    def _refuse(self, entry: dict[str, Any], error: BaseException) -> None:
        if isinstance(error, LakeAccessError):  # the store failed, not the file: the batch fails
            raise error
        reason = (
            str(error) if isinstance(error, readers.FileRejected) else f"unreadable: {type(error).__name__}: {error}"
        )
        if isinstance(error, FileNotFoundError):
            reason = "deleted before it could be read"
        entry.update(status="quarantined", reason=reason)

    def schema(self) -> StreamSchema:
        return StreamSchema(self.data_schema(), {}, frozenset())

    def data_schema(self) -> pa.Schema:
        return pa.schema([f.with_type(_no_nulls(f.type)) for f in self.fields])

    def land(self, landing: BatchLanding, emitted_at: int) -> None:
        """Every record of the files taken, or the reason it is not; then the schema the
        stream's parts settle in."""
        for entry in self.entries:
            if entry["status"] == "quarantined":
                landing.reject(self.stream.name, f"{entry['path']}: {entry['reason']}", entry, emitted_at)
                continue
            if entry["status"] != "take":
                continue
            self._land_file(entry, landing, emitted_at)
        if self.listed:
            self._land_listed(landing, emitted_at)
        landing.settle_schema(self.stream.name, self.schema(), conform_table)

    def _land_listed(self, landing: BatchLanding, emitted_at: int) -> None:
        """A new batch's files, classified in listing order (:class:`Classifier`) while a
        thread hashes them ahead: a file under a name the ledger does not hold is read
        while it is hashed, and kept only if it turns out taken (not a duplicate, not still
        being written, not gone); any other file is read once its hash says so."""
        assert self.classifier is not None
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sluice-hash")
        try:
            hashes = {
                file.path: pool.submit(sha256_of, self.lake, file.path) for file in self.listed if not file.partial
            }
            for file in self.listed:
                hashed = hashes[file.path].result if file.path in hashes else None
                if file.partial or self.classifier.known(file):
                    entry = self.classifier.entry(file, hashed)
                    if entry is not None:
                        self.entries.append(entry)
                        if entry["status"] == "take":
                            self._land_file(entry, landing, emitted_at)
                    continue
                provisional = {"path": self.lake.relative(file.path), "size": file.size}
                self._land_file(provisional, landing, emitted_at, lambda file=file, h=hashed: self._decide(file, h))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _decide(self, file: Listed, hashed: Callable[[], tuple[str, int]] | None) -> dict[str, Any] | None:
        assert self.classifier is not None
        entry = self.classifier.entry(file, hashed)
        if entry is not None:
            self.entries.append(entry)
        return entry

    def _land_file(
        self,
        entry: dict[str, Any],
        landing: BatchLanding,
        emitted_at: int,
        decide: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        """One file, staged: a file that cannot be trusted, found so at any point, is refused
        whole (none of its records lands, its columns do not join the stream's schema).
        With ``decide``, the file is read before the ledger has classified it; ``decide``
        gives its entry once it is read, and a file not taken leaves nothing."""
        while True:
            fields = list(self.fields)
            try:
                with landing.staged(self.stream.name):
                    failure = None
                    try:
                        self._land_records(entry, landing, emitted_at)
                    except Exception as error:
                        failure = error
                    if decide is not None:
                        decided, decide = decide(), None
                        if decided is None or decided["status"] != "take":
                            raise _NotTaken
                        entry = decided
                    if failure is not None:
                        raise failure
            except _NotTaken:
                self.fields = fields
                return
            except Exception as error:
                self.fields = fields
                retry = self.fmt.format == "jsonl" and not isinstance(error, (readers.FileRejected, LakeAccessError))
                if retry and entry["path"] not in self.lines:
                    self.lines.add(entry["path"])  # pyarrow refused a block: find the bad lines
                    continue
                self._refuse(entry, error)
                landing.reject(self.stream.name, f"{entry['path']}: {entry['reason']}", entry, emitted_at)
                return
            entry["status"] = "ingested"
            return

    def _land_records(self, entry: dict[str, Any], landing: BatchLanding, emitted_at: int) -> None:
        count = 0
        for item in self.records(entry):
            if isinstance(item, readers.Reject):
                data = {"file": entry["path"], **item.data}
                landing.reject(self.stream.name, f"{entry['path']}: {item.reason}", data, emitted_at)
                continue
            if isinstance(item, readers.Rows):
                count += len(item.rows)
                table = self._from_rows(item, entry["path"], landing, emitted_at)
            else:
                count += item.table.num_rows
                table = self.fit(item.table, entry["path"], landing, emitted_at)
            if table is not None and table.num_rows:
                landing.add_batch(self.stream.name, table, emitted_at)
        if count == 0 and entry["size"] == 0:
            raise readers.FileRejected("empty file")

    def _types(self) -> dict[str, pa.DataType]:
        return {f.name: _no_nulls(f.type) for f in self.fields}

    def fit(self, table: pa.Table, path: str, landing: BatchLanding, emitted_at: int) -> pa.Table | None:
        """An Arrow table in the stream's schema as far as it is known, vectorised: its
        columns join the schema (:func:`merge_fields`), a JSON record that cannot land as it
        is (see :meth:`_unfit`) is quarantined, the rest conformed (:func:`conform_table`);
        a CSV or XML record key that is empty is missing."""
        self.fields = merge_fields(self.fields, list(table.schema), self.fixed)
        if self.fmt.format in ("jsonl", "json"):
            bad, reasons = self._unfit_rows(table)
            if bad is not None:
                for row, reason in zip(table.filter(bad).to_pylist(), reasons, strict=True):
                    reason = f"does not fit the stream schema: {reason}"
                    landing.reject(self.stream.name, f"{path}: {reason}", row, emitted_at)
                table = table.filter(pc.invert(bad))
        try:
            fitted = conform_table(table, self.data_schema())
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError, OverflowError):
            # a value Arrow cannot convert: record by record, each that does not fit quarantined
            return self._from_rows(readers.Rows(table.to_pylist(), table.schema), path, landing, emitted_at)
        if self.fmt.format in ("csv", "xml"):
            fitted = _blank_keys_missing(fitted, self.stream.record_key)
        return fitted

    def _unfit_rows(self, table: pa.Table) -> tuple[pa.ChunkedArray | None, list[str]]:
        """:meth:`_unfit` over a table: the rows that cannot land and why (the first reason
        of each), found by Arrow; only those rows are looked at one by one."""
        types = self._types()
        checks: list[tuple[Any, pa.ChunkedArray, Callable[[Any], str]]] = []
        present = set(table.column_names)
        for f in self.fields:
            column = table.column(f.name) if f.name in present else None
            if column is not None and pa.types.is_integer(types[f.name]) and pa.types.is_floating(column.type):
                unequal = pc.not_equal(column, pc.floor(column))
                bad = pc.and_kleene(unequal, pc.is_valid(unequal))  # a null is no fraction
                checks.append((bad, column, lambda v, name=f.name: f"{name} {v!r} is not an integer"))
        for f in self.fields:
            column = table.column(f.name) if f.name in present else None
            data_type = types[f.name]
            if column is None or f.name not in self.fixed or pa.types.is_string(data_type):
                continue
            if pa.types.is_binary(data_type) or not readers._plain_text(column.type):
                continue
            checks.append(
                (
                    column.is_valid(),
                    column,
                    lambda v, name=f.name, t=data_type: (
                        f"{name} {v!r} is text, its bronze column {t} (a type Delta cannot widen in place)"
                    ),
                )
            )
        if not checks:
            return None, []
        bad = checks[0][0]
        for other, _, _ in checks[1:]:
            bad = pc.or_(bad, other)
        if not pc.any(bad).as_py():
            return None, []
        reasons = []
        for i in np.flatnonzero(bad.to_numpy(zero_copy_only=False)):
            for mask, column, why in checks:
                if mask[int(i)].as_py():
                    reasons.append(why(column[int(i)].as_py()))
                    break
        return bad, reasons

    def _from_rows(self, item: readers.Rows, path: str, landing: BatchLanding, emitted_at: int) -> pa.Table | None:
        """Records as dicts (decoded by the standard library), one by one: those that cannot
        land quarantined with why, the rest conformed and built as Arrow."""
        self.fields = merge_fields(self.fields, list(item.schema), self.fixed)
        types = self._types()
        key = set(self.stream.record_key)
        rows = []
        for row in item.rows:
            if not isinstance(row, dict):
                landing.reject(self.stream.name, "record data is not a JSON object", row, emitted_at)
                continue
            if self.fmt.format in ("csv", "xml"):
                row = {k: (None if k in key and v == "" else v) for k, v in row.items()}
            else:
                if reason := self._unfit(row, types):
                    reason = f"does not fit the stream schema: {reason}"
                    landing.reject(self.stream.name, f"{path}: {reason}", row, emitted_at)
                    continue
                row = {k: conform(v, types[k]) if k in types else v for k, v in row.items()}
            rows.append(row)
        schema = self.data_schema()
        if not len(schema):
            return readers.empty_records(len(rows))
        errors = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError)
        try:
            return pa.Table.from_pylist(rows, schema=schema)
        except errors:
            pass
        good = []
        for row in rows:
            try:
                good.append(pa.Table.from_pylist([row], schema=schema))
            except errors as exc:
                landing.reject(self.stream.name, f"does not fit the stream schema: {exc}", row, emitted_at)
        return pa.concat_tables(good) if good else None

    def _unfit(self, row: dict[str, Any], types: dict[str, pa.DataType]) -> str | None:
        """Why a JSON record cannot land as it is: an integer column holding a fraction
        (Arrow would truncate it, silently), or text where the bronze table already holds a
        number or a bool (a Delta column's type cannot widen in place: the row waits in
        quarantine for the table to be rebuilt or the export fixed)."""
        for column, data_type in types.items():
            value = row.get(column)
            if pa.types.is_integer(data_type) and isinstance(value, float) and not value.is_integer():
                return f"{column} {value!r} is not an integer"
        for column, data_type in types.items():
            if column not in self.fixed:
                continue
            value = row.get(column)
            if isinstance(value, str) and not (pa.types.is_string(data_type) or pa.types.is_binary(data_type)):
                return f"{column} {value!r} is text, its bronze column {data_type} (a type Delta cannot widen in place)"
        return None

    def ledger(self) -> list[dict[str, Any]]:
        return list(self.entries)


def _blank_keys_missing(table: pa.Table, key: tuple[str, ...]) -> pa.Table:
    """An empty CSV or XML value of a record key column is no key."""
    for name in key:
        index = table.schema.get_field_index(name)
        if index < 0 or not pa.types.is_string(table.schema.field(index).type):
            continue
        column = table.column(index)
        # no Python scalar here: pyarrow would import pandas to look at it
        blank = pc.invert(pc.cast(pc.binary_length(column), pa.bool_()))
        if pc.any(blank).as_py():
            nulls = pa.nulls(len(column), column.type)
            table = table.set_column(index, table.schema.field(index), pc.if_else(blank, nulls, column))
    return table


class _NotTaken(Exception):
    """A file read ahead of its classification turned out not taken."""


@dataclass
class _Plan:
    """What a stream's batch takes: a rerun's entries, or a new batch's listed files and
    the classifier that decides on each."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    classifier: Classifier | None = None
    listed: list[Listed] = field(default_factory=list)


def _plan(source: SourceConfig, stream: StreamConfig, batch: str, lake: Lake) -> _Plan:
    """The files this batch takes: those its own published entry named (a rerun), else the
    inbox's files no other batch took."""
    try:
        own = read_manifest(lake, source.name, stream.name, batch).get("inputs")
    except LandingError:
        own = None
    if own is not None:
        entries = []
        for entry in own:
            if entry.get("status") not in TAKEN:
                continue
            if entry["status"] == "duplicate":
                entries.append(dict(entry))
                continue
            again = {key: entry[key] for key in ("path", "sha256", "size", "version") if key in entry}
            try:
                sha, _ = sha256_of(lake, lake.path(entry["path"]))
            except FileNotFoundError:
                sha = None
            if sha != entry["sha256"]:
                what = "is gone" if sha is None else "has changed"
                entries.append({**again, "status": "quarantined", "reason": f"the file batch {batch} took {what}"})
            else:
                entries.append({**again, "status": "take"})
        return _Plan(entries)
    assert stream.files is not None
    listed = list_inbox(lake, source.name, stream.name, stream.files.pattern)
    return _Plan([], Classifier(lake, taken_by_others(lake, source.name, stream.name, batch)), listed)


def land_files(source: SourceConfig, batch: str, lake: Lake) -> dict[str, dict[str, Any]]:
    """Land ``batch`` of a ``files`` source: per stream, the published manifest, whose
    ``inputs`` is the batch's ledger entry."""
    streams = {s.name: _Stream(source, s, lake, _plan(source, s, batch, lake)) for s in source.streams}
    landing = BatchLanding(lake, source.name, batch, {name: (s.stream, s.schema()) for name, s in streams.items()})
    emitted_at = int(time.time() * 1000)
    try:
        for stream in streams.values():
            stream.land(landing, emitted_at)
        return landing.publish([], extra={name: {"inputs": s.ledger()} for name, s in streams.items()})
    except BaseException:
        landing.abort()
        raise
