"""Prove an erasure: scan every file under the lake, decoded, for the people's identifiers
and the values of their personal columns (types ``pii:<column>``, :mod:`sluice.erasure.pii`).

Parquet files (data files, quarantine, Delta checkpoints, the index) are read column by
column: a string column (nested ones as their JSON text) must not contain an email
identifier, and no column declared for an identifier type may hold one of that type's
values. Text files (the Delta log, manifests, state, JSON of any kind) are decoded and
searched the same way: emails as text, other identifiers as the values of the keys
declared for them (a Delta log's statistics included). What is found is reported by
path and identifier type, never by value. A personal value is found where a Parquet
string column or a JSON value holds it whole (case and surrounding spaces aside).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sluice.erasure.pii import is_pii
from sluice.lake.index import CASELESS_TYPES, normalise
from sluice.lake.storage import Lake


@dataclass(frozen=True)
class Finding:
    """An identifier of the people found in a file (the value is never kept)."""

    path: str
    kind: str
    where: str  # column or key


def _strings(array: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """A column as text to search: strings as they are, nested values as JSON text."""
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return array
    if pa.types.is_nested(array.type):
        return pa.chunked_array([pa.array([json.dumps(v, default=str) for v in array.to_pylist()], pa.string())])
    return None


def _scan_parquet(
    lake: Lake, path: str, by_column: Mapping[str, str], identifiers: Mapping[str, set[str]]
) -> Iterator[Finding]:
    with lake.fs.open_input_file(path) as file:
        table = pq.read_table(file)
    personal = {kind: values for kind, values in identifiers.items() if is_pii(kind) and values}
    for name in table.column_names:
        column = table.column(name)
        leaf = name.rsplit(".", 1)[-1]
        kind = by_column.get(leaf)
        if kind and identifiers.get(kind) and kind not in CASELESS_TYPES:
            values = pc.cast(column, pa.string()) if not pa.types.is_nested(column.type) else None
            if values is not None and pc.any(pc.is_in(values, pa.array(sorted(identifiers[kind])))).as_py():
                yield Finding(path, kind, name)
        text = _strings(column)
        if text is None:
            continue
        if personal and not pa.types.is_nested(column.type):
            whole = pc.utf8_lower(pc.utf8_trim_whitespace(text))
            for kind, values in personal.items():
                if pc.any(pc.is_in(whole, pa.array(sorted(values)))).as_py():
                    yield Finding(path, kind, name)
        lowered = pc.utf8_lower(text)
        for caseless in CASELESS_TYPES:
            for value in identifiers.get(caseless, ()):
                if pc.any(pc.match_substring(lowered, value)).as_py():
                    yield Finding(path, caseless, name)
                    break


def _walk(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Every (key, scalar) of a JSON document, also inside JSON held in strings (stats)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v, key)
    elif isinstance(value, str) and value[:1] in "{[":
        try:
            yield from _walk(json.loads(value), key)
        except ValueError:
            yield key, value
    else:
        yield key, value


def _scan_text(
    path: str, data: bytes, by_column: Mapping[str, str], identifiers: Mapping[str, set[str]]
) -> Iterator[Finding]:
    text = data.decode("utf-8", errors="replace")
    lowered = text.lower()
    for caseless in CASELESS_TYPES:
        if any(value in lowered for value in identifiers.get(caseless, ())):
            yield Finding(path, caseless, "text")
    documents = []
    for line in text.splitlines():  # the Delta log and JSON Lines: one document per line
        try:
            documents.append(json.loads(line))
        except ValueError:
            continue
    personal = {value: kind for kind, values in identifiers.items() if is_pii(kind) for value in values}
    for document in documents:
        for key, value in _walk(document):
            kind = by_column.get(key)
            if kind and value is not None and normalise(kind, value) in identifiers.get(kind, set()):
                yield Finding(path, kind, key)
            if personal and isinstance(value, str) and value.strip().lower() in personal:
                yield Finding(path, personal[value.strip().lower()], key)


def declared_columns(sources: Iterable[Any]) -> dict[str, dict[str, str]]:
    """Per folder of a stream (its bronze table, quarantine and landing), the identifier
    columns it declares: column -> identifier type."""
    folders = {}
    for source in sources:
        for stream in source.streams:
            if stream.identifiers:
                for area in ("bronze", "quarantine", "landing"):
                    folders[f"{area}/{source.name}/{stream.name}"] = stream.identifier_types
    return folders


def _columns_of(lake: Lake, path: str, declared: Mapping[str, Mapping[str, str]]) -> Mapping[str, str]:
    relative = lake.relative(path)
    return next((columns for folder, columns in declared.items() if relative.startswith(folder + "/")), {})


def scan_lake(
    lake: Lake,
    identifiers: Mapping[str, set[str]],
    declared: Mapping[str, Mapping[str, str]],
    folder: str = "",
    exclude: Iterable[str] = (),
) -> list[Finding]:
    """Every place under the lake's root where one of the people's identifiers remains.

    Emails are searched in every file's text; other identifier types only in the
    columns (and log statistics) a stream declares for them, in that stream's folders:
    a product id is not a user id.

    :param identifiers: identifier type -> normalised values (as :func:`resolve` gives)
    :param declared: stream folder -> its identifier columns (:func:`declared_columns`)
    :param folder: scan only this folder (relative to the root)
    :param exclude: folders (relative to the root) left out
    """
    from pyarrow.fs import FileSelector, FileType

    findings: list[Finding] = []
    skipped = tuple(lake.path(path) + "/" for path in exclude)
    infos = lake.fs.get_file_info(FileSelector(lake.path(folder), recursive=True, allow_not_found=True))
    for info in infos:
        if info.type != FileType.File or info.path.startswith(skipped):
            continue
        by_column = _columns_of(lake, info.path, declared)
        if info.path.endswith(".parquet"):
            findings += _scan_parquet(lake, info.path, by_column, identifiers)
        else:
            findings += _scan_text(info.path, lake.read_bytes(info.path), by_column, identifiers)
    return sorted(set(findings), key=lambda f: (f.path, f.kind, f.where))
