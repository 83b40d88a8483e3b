"""Arrow schemas for Airbyte streams, as Airbyte's S3 destination writes Parquet.

Every landed file starts with the destination's metadata columns; the data columns
follow the stream's JSON schema. Timestamps become UTC timestamps in microseconds (the
precision of Delta tables, which register the files as they are), objects with declared
properties become structs, and anything without a fixed shape (arrays, free-form
objects, unions) is kept as a JSON string, so no value is ever dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

AIRBYTE_META_TYPE = pa.struct(
    [
        ("sync_id", pa.int64()),
        (
            "changes",
            pa.list_(pa.struct([("field", pa.string()), ("change", pa.string()), ("reason", pa.string())])),
        ),
    ]
)
#: Airbyte emits milliseconds; Delta tables keep microseconds, so the files match the table.
EXTRACTED_AT_TYPE = pa.timestamp("us", tz="UTC")
METADATA_FIELDS = [
    pa.field("_airbyte_raw_id", pa.string(), nullable=False),
    pa.field("_airbyte_extracted_at", EXTRACTED_AT_TYPE, nullable=False),
    pa.field("_airbyte_generation_id", pa.int64()),
    pa.field("_airbyte_meta", AIRBYTE_META_TYPE),
]
#: JSON of the record's fields that its stream schema does not declare (null if none).
UNMAPPED_FIELD = pa.field("_sluice_unmapped", pa.string())

_SCALARS = {"integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}


def _types(spec: Mapping[str, Any]) -> list[str]:
    declared = spec.get("type", [])
    types = [declared] if isinstance(declared, str) else list(declared)
    return [t for t in types if t != "null"]


def _arrow_type(spec: Mapping[str, Any]) -> tuple[pa.DataType, str]:
    """(type used to build the column, kind): kind is scalar, timestamp or json."""
    types = _types(spec)
    if len(types) != 1:
        return pa.string(), "json"
    (kind,) = types
    if kind in _SCALARS:
        return _SCALARS[kind], "scalar"
    if kind == "string":
        airbyte_type = spec.get("airbyte_type")
        if spec.get("format") == "date-time" and airbyte_type != "timestamp_without_timezone":
            return pa.timestamp("us", tz="UTC"), "timestamp"
        if spec.get("format") == "date-time":
            return pa.timestamp("us"), "timestamp"
        if spec.get("format") == "date":
            return pa.date32(), "timestamp"
        return pa.string(), "scalar"
    if kind == "object" and spec.get("properties"):
        fields = [pa.field(name, _arrow_type(sub)[0]) for name, sub in spec["properties"].items()]
        if all(_arrow_type(sub)[1] == "scalar" for sub in spec["properties"].values()):
            return pa.struct(fields), "scalar"
    return pa.string(), "json"


@dataclass(frozen=True)
class StreamSchema:
    """How one stream's records become Arrow columns."""

    data: pa.Schema
    #: columns parsed from strings after building (timestamps, dates)
    parsed: dict[str, pa.DataType]
    #: columns serialised to JSON text before building
    json_columns: frozenset[str]

    @property
    def build_schema(self) -> pa.Schema:
        """The data schema with parsed columns still as strings."""
        return pa.schema([pa.field(f.name, pa.string()) if f.name in self.parsed else f for f in self.data])

    @property
    def landed(self) -> pa.Schema:
        """Full schema of a landed Parquet file."""
        return pa.schema([*METADATA_FIELDS, *self.data, UNMAPPED_FIELD])


def stream_schema(json_schema: Mapping[str, Any]) -> StreamSchema:
    fields, parsed, json_columns = [], {}, set()
    for name, spec in (json_schema.get("properties") or {}).items():
        arrow_type, kind = _arrow_type(spec)
        fields.append(pa.field(name, arrow_type))
        if kind == "timestamp":
            parsed[name] = arrow_type
        elif kind == "json":
            json_columns.add(name)
    return StreamSchema(pa.schema(fields), parsed, frozenset(json_columns))
