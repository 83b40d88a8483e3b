"""The person's values of declared personal columns, for the proof of an erasure.

Identifiers prove which rows were the person's; a name or a phone number found in a
log's statistics, a stale copy or a file nobody thought of proves that a copy survived.
Before anything is erased, the values of the person's declared ``pii`` columns are read
from their rows and kept with the request (like its resolved identifiers, until it is
done), as types ``pii:<column>``. After the purge a value is searched only where it can
only be the person's: values of at least :data:`MIN_LENGTH` characters that no remaining
row of the lake holds (``M``, ``34`` or another person's ``Engineer`` say nothing about
whom). A value is matched whole (case aside), never as part of a longer text.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sluice.lake.storage import Lake

PREFIX = "pii:"
MIN_LENGTH = 4


def is_pii(kind: str) -> bool:
    return kind.startswith(PREFIX)


def without_pii(identifiers: Mapping[str, Any]) -> dict[str, Any]:
    """The identifier types of a request, its kept personal values aside."""
    return {kind: values for kind, values in identifiers.items() if not is_pii(kind)}


def _values(column: pa.ChunkedArray) -> set[str]:
    """A column's distinctive text values, stripped and in lower case."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return set()
    return {v.strip().lower() for v in column.drop_null().to_pylist() if len(v.strip()) >= MIN_LENGTH}


def _personal_streams(sources: Iterable[Any]) -> list[tuple[Any, Any]]:
    return [(source, stream) for source in sources for stream in source.streams if stream.pii and stream.identifiers]


def person_values(
    lake: Lake, sources: Iterable[Any], identifiers: Mapping[str, Iterable[str]], salt: bytes
) -> dict[str, set[str]]:
    """``pii:<column>`` -> the person's values of that column, read from their rows in the
    bronze files the index names for them."""
    from sluice.lake.files import bronze_table_path
    from sluice.lake.index import files_holding, identifier_hashes
    from sluice.lake.rewrite import matches

    found: dict[str, set[str]] = {}
    for source, stream in _personal_streams(sources):
        kinds = set(stream.identifier_types.values())
        hashes = identifier_hashes({kind: identifiers.get(kind, ()) for kind in kinds}, salt)
        table_path = bronze_table_path(lake, source.name, stream.name)
        for name in files_holding(lake, source.name, stream.name, hashes):
            with lake.fs.open_input_file(posixpath.join(table_path, name)) as file:
                data = pq.read_table(file)
            rows = data.filter(matches(data, stream, identifiers))
            for column in stream.pii:
                # identifier columns are searched as identifiers already
                if column in rows.column_names and column not in stream.identifier_types:
                    found.setdefault(PREFIX + column, set()).update(_values(rows.column(column)))
    return {kind: values for kind, values in found.items() if values}


def unattributed(lake: Lake, sources: Iterable[Any], values: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """Of the person's ``values``, those no remaining row of a bronze table holds in the
    column (any stream declaring it): only those prove a copy of the person if found."""
    from sluice.lake.files import bronze_table_path

    left = {kind: set(found) for kind, found in values.items() if is_pii(kind) and found}
    for source, stream in _personal_streams(sources):
        columns = [c for c in stream.pii if left.get(PREFIX + c)]
        table = lake.delta_table(bronze_table_path(lake, source.name, stream.name)) if columns else None
        if table is None:
            continue
        present = set(table.schema().to_arrow().names)
        scanner = table.to_pyarrow_dataset().scanner(columns=[c for c in columns if c in present], batch_size=65_536)
        for batch in scanner.to_batches():
            for column in batch.schema.names:
                wanted = left[PREFIX + column]
                if not wanted or not pa.types.is_string(batch.column(column).type):
                    continue
                lowered = pc.utf8_lower(pc.utf8_trim_whitespace(batch.column(column)))
                held = pc.filter(lowered, pc.fill_null(pc.is_in(lowered, pa.array(sorted(wanted))), False))
                wanted.difference_update(held.to_pylist())
    return {kind: found for kind, found in left.items() if found}
