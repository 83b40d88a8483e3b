"""One batch of a ``files`` source: files dropped under the lake's
``inbox/<source>/<stream>/``, read by native readers (:mod:`.readers`), taken once by path
and content hash (:mod:`.ledger`), landed through :class:`sluice.ingest.landing.BatchLanding`.

Each file is read twice, streaming: once for the stream's schema (and to refuse a file
that cannot be trusted before any of its records lands), once to land its records.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from sluice.core.sources import FileFormat, SourceConfig, StreamConfig
from sluice.ingest.files import readers
from sluice.ingest.files.ledger import TAKEN, classify, list_inbox, sha256_of, taken_by_others
from sluice.ingest.files.readers import conform, map_leaves, merge_fields
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

    def __init__(self, source: SourceConfig, stream: StreamConfig, lake: Lake, entries: list[dict[str, Any]]) -> None:
        if stream.files is None:
            raise LandingError(f"{source.name}.{stream.name} declares no format")
        self.source, self.stream, self.lake, self.entries = source, stream, lake, entries
        self.fmt: FileFormat = stream.files
        self.xsd = readers.load_xsd(self.fmt.xsd) if self.fmt.xsd else None
        self.fields: list[pa.Field] = table_fields(lake, source.name, stream.name)
        self.fixed = frozenset(f.name for f in self.fields)  # the bronze table's types stay
        self.lines: set[str] = set()  # JSON Lines files read line by line

    def records(self, entry: dict[str, Any]) -> Iterator[readers.Rows | readers.Reject]:
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

    def scan(self) -> None:
        """The first pass: the stream's schema; a file that cannot be trusted is refused."""
        for entry in self.entries:
            if entry["status"] != "take":
                continue
            try:
                self._scan(entry)
            except Exception as error:
                if self.fmt.format != "jsonl" or isinstance(error, readers.FileRejected):
                    self._refuse(entry, error)
                    continue
                self.lines.add(entry["path"])  # pyarrow refused a block: find the bad lines
                try:
                    self._scan(entry)
                except Exception as retry:
                    self._refuse(entry, retry)

    def _scan(self, entry: dict[str, Any]) -> None:
        fields = list(self.fields)
        count = 0
        for item in self.records(entry):
            if isinstance(item, readers.Rows):
                fields = merge_fields(fields, list(item.schema), self.fixed)
                count += len(item.rows)
        if count == 0 and entry["size"] == 0:
            raise readers.FileRejected("empty file")
        self.fields = fields

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
        return StreamSchema(pa.schema([f.with_type(_no_nulls(f.type)) for f in self.fields]), {}, frozenset())

    def land(self, landing: BatchLanding, emitted_at: int) -> None:
        """The second pass: every record of the files taken, or the reason it is not."""
        key = set(self.stream.record_key)
        self.integers = [f.name for f in self.fields if pa.types.is_integer(f.type)]
        self.types = {f.name: _no_nulls(f.type) for f in self.fields}
        for entry in self.entries:
            if entry["status"] == "quarantined":
                landing.reject(self.stream.name, f"{entry['path']}: {entry['reason']}", entry, emitted_at)
                continue
            if entry["status"] != "take":
                continue
            entry["status"] = "ingested"
            try:
                for item in self.records(entry):
                    if isinstance(item, readers.Reject):
                        landing.reject(
                            self.stream.name,
                            f"{entry['path']}: {item.reason}",
                            {"file": entry["path"], **item.data},
                            emitted_at,
                        )
                        continue
                    for row in item.rows:
                        if isinstance(row, dict) and self.fmt.format in ("csv", "xml"):
                            row = {k: (None if k in key and v == "" else v) for k, v in row.items()}
                        elif isinstance(row, dict):
                            if reason := self._unfit(row):
                                reason = f"does not fit the stream schema: {reason}"
                                landing.reject(self.stream.name, f"{entry['path']}: {reason}", row, emitted_at)
                                continue
                            row = {k: conform(v, self.types[k]) if k in self.types else v for k, v in row.items()}
                        landing.add({"stream": self.stream.name, "data": row, "emitted_at": emitted_at})
            except Exception as error:  # changed or removed since the first pass
                self._refuse(entry, error)
                reason = f"{entry['path']}: the rest of the file not read: {entry['reason']}"
                landing.reject(self.stream.name, reason, {"file": entry["path"]}, emitted_at)

    def _unfit(self, row: dict[str, Any]) -> str | None:
        """Why a JSON record cannot land as it is: an integer column holding a fraction
        (Arrow would truncate it, silently), or text where the bronze table already holds a
        number or a bool (a Delta column's type cannot widen in place: the row waits in
        quarantine for the table to be rebuilt or the export fixed)."""
        for column in self.integers:
            value = row.get(column)
            if isinstance(value, float) and not value.is_integer():
                return f"{column} {value!r} is not an integer"
        for column in self.fixed:
            value, data_type = row.get(column), self.types[column]
            if isinstance(value, str) and not (pa.types.is_string(data_type) or pa.types.is_binary(data_type)):
                return f"{column} {value!r} is text, its bronze column {data_type} (a type Delta cannot widen in place)"
        return None

    def ledger(self) -> list[dict[str, Any]]:
        return list(self.entries)


def _entries(source: SourceConfig, stream: StreamConfig, batch: str, lake: Lake) -> list[dict[str, Any]]:
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
        return entries
    assert stream.files is not None
    listed = list_inbox(lake, source.name, stream.name, stream.files.pattern)
    return classify(lake, listed, taken_by_others(lake, source.name, stream.name, batch))


def land_files(source: SourceConfig, batch: str, lake: Lake) -> dict[str, dict[str, Any]]:
    """Land ``batch`` of a ``files`` source: per stream, the published manifest, whose
    ``inputs`` is the batch's ledger entry."""
    streams = {s.name: _Stream(source, s, lake, _entries(source, s, batch, lake)) for s in source.streams}
    for stream in streams.values():
        stream.scan()
    landing = BatchLanding(lake, source.name, batch, {name: (s.stream, s.schema()) for name, s in streams.items()})
    emitted_at = int(time.time() * 1000)
    try:
        for stream in streams.values():
            stream.land(landing, emitted_at)
        return landing.publish([], extra={name: {"inputs": s.ledger()} for name, s in streams.items()})
    except BaseException:
        landing.abort()
        raise
