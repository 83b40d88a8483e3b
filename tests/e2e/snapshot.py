"""Comparable pictures of the lake and the warehouse, for idempotency and backfill checks.

Two runs of the same batches must leave the same lake and the same warehouse: every
column of every table and view in every schema of the warehouse, and every file the lake
has committed, in every area (landing manifests, connector state, quarantine, and each
Delta table's current version: schema, partitioning, configuration, and each active file
with its statistics and rows). What may differ is only what records the run itself: each
such column or field is named once, with its reason, in :data:`NOT_COMPARED`.

That holds when the runs are given the same inputs: :func:`pinned_environment` gives
source-faker the batch's clock instead of the wall clock, and every install one erasure
salt. A Delta table is compared at its current version, not by its log (one commit per
write, stamped with its time: a rerun adds commits by design); files no version
references any more (an earlier attempt's, kept for time travel until a vacuum) are not
committed and not compared.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import posixpath
import re
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from environment import ROOT
from sluice.lake.storage import Lake, open_lake

#: Everything two runs of the same batches may hold differently, and why: (where, field)
#: -> reason. ``where`` is a glob over ``lake:<path below the lake's root>`` and
#: ``warehouse:<schema>.<table>`` (``|`` between alternatives); ``field`` is a column, a
#: dotted field of a JSON file or of a Delta table's state, ``<columns> of
#: <check>.<metric>`` for the figures of one check-result metric, or ``*`` for all of it.
#: (By construction, not by entry: a Delta table's log and the files no version of it
#: references are not committed state; see the module's docstring.)
NOT_COMPARED: dict[tuple[str, str], str] = {
    ("*", "_airbyte_extracted_at"): (
        "when the connector emitted the record (Airbyte's extraction time), by the wall clock:"
        " freshness measures it, so the tests' pinned clock leaves it alone"
    ),
    ("lake:*", "add.size_bytes"): "a Parquet file's compressed size: its _airbyte_extracted_at column is in it",
    ("lake:landing/*/*/batch=*.json", "bytes"): "the landed files' compressed size (as add.size_bytes)",
    ("lake:*", "add.modification_time"): "when the file was written",
    ("lake:*", "metadata.created_time"): "when the table was created",
    ("lake:*", "metadata.id"): "a random id the table is given when it is created",
    ("lake:landing/*/*/batch=*.json", "attempt"): (
        "the landing attempt's random token, also in the names of the files it lands (where it"
        " is compared as <attempt>): every attempt writes new names, never a file a table version references"
    ),
    ("lake:state/*/catalog.json", "discovered_at"): "when the connector's catalog was discovered",
    ("lake:ops/incidents|lake:ops/open_incidents/*", "*"): (
        "alert incidents: how the runs went, not what they left (opened when a run misses its"
        " deadline by the wall clock, or a try fails); the S3 backfill makes its runs late on purpose"
    ),
    ("lake:ops/check_results|warehouse:ops.batch_metrics", "checked_at"): (
        "when the check ran; the lake keeps every run's results, the warehouse the newest per"
        " (dag, batch, table, check): the newest is compared (HISTORIES)"
    ),
    ("lake:ops/check_results|warehouse:ops.batch_metrics", "value, detail of freshness.lag_seconds"): (
        "the age of the newest row or commit at the time of the check, by the wall clock"
    ),
    ("lake:ops/check_results|warehouse:ops.batch_metrics", "value, detail of timeliness.landing_latency_seconds"): (
        "how long after the interval's end the batch landed, by the wall clock"
    ),
    ("lake:ops/check_results|warehouse:ops.batch_metrics", "value, detail of volume.bytes"): (
        "the landed files' compressed size (as add.size_bytes)"
    ),
}
#: Lake tables that keep a history of runs: key columns -> the run's time column. Each key's
#: newest rows are compared; the files (one per run) are not.
HISTORIES = {"lake:ops/check_results": (("dag_id", "batch", "table_name", "check"), "checked_at")}
LAYERS = ("bronze", "silver", "gold", "marts")
#: random parts of file names: a landing attempt's token (``..._<epoch>_<attempt>_<n>.parquet``,
#: sluice.ingest.landing) and the uuids deltalake names its files by
_RANDOM_NAMES = (
    (re.compile(r"(\d{4}_\d{2}_\d{2}_\d+_)[0-9a-f]{8}(_\d+\.parquet)"), r"\1<attempt>\2"),
    (re.compile(r"(part-\d+-)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(-c\d+)"), r"\1<uuid>\2"),
    (re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(\.parquet)"), r"<uuid>\1"),
)
#: the sitecustomize that gives source-faker the batch's clock
CONNECTOR_CLOCK = ROOT / "tests" / "connector_clock"
BATCH_HOURS = 6


def pinned_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` for runs whose lakes and warehouses are compared: the same batch gives the same
    records (source-faker reads the end of the task's interval as now, see
    tests/connector_clock), and every install hashes the same person alike (one erasure salt)."""
    return {
        **env,
        "PYTHONPATH": f"{env['PYTHONPATH']}:{CONNECTOR_CLOCK}",
        "SLUICE_TEST_FAKER_CLOCK_HOURS": str(BATCH_HOURS),
        "SLUICE_ERASURE_SALT": "the tests' one salt",
    }


def not_compared(name: str) -> set[str]:
    """The fields of ``name`` (``lake:...``, ``warehouse:...`` or a bare table name) :data:`NOT_COMPARED` names."""
    return {
        field for (where, field) in NOT_COMPARED if any(fnmatch.fnmatchcase(name, glob) for glob in where.split("|"))
    }


def without_random_names(text: str) -> str:
    if ".parquet" not in text:  # every random name is a Parquet file's
        return text
    for pattern, replacement in _RANDOM_NAMES:
        text = pattern.sub(replacement, text)
    return text


def _comparable(value: Any) -> Any:
    if isinstance(value, str):
        return without_random_names(value)
    if isinstance(value, dict):
        return {key: _comparable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    return value


def _metric_fields(fields: set[str]) -> dict[str, set[str]]:
    """``{"freshness.lag_seconds": {"value", "detail"}}`` from ``value, detail of freshness.lag_seconds``."""
    metrics: dict[str, set[str]] = {}
    for field in fields:
        if " of " in field:
            columns, metric = field.split(" of ")
            metrics.setdefault(metric, set()).update(columns.split(", "))
    return metrics


def _newest(rows: list[dict], name: str) -> list[dict]:
    keys, time_column = HISTORIES[name]
    newest: dict[tuple, Any] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        newest[key] = max(newest.get(key, row[time_column]), row[time_column])
    return [row for row in rows if row[time_column] == newest[tuple(row[k] for k in keys)]]


def comparable_rows(table: pa.Table, name: str = "") -> list[tuple]:
    """Rows of an Arrow table, sorted, as ``(column, value)`` pairs, without what
    :data:`NOT_COMPARED` names for ``name`` and with random file names masked."""
    fields = not_compared(name)
    rows = table.to_pylist()
    if name in HISTORIES:
        rows = _newest(rows, name)
    metrics = _metric_fields(fields)
    comparable = []
    for row in rows:
        blank = metrics.get(f"{row.get('check')}.{row.get('metric')}", set())
        comparable.append(
            tuple(
                (column, None if column in blank else _comparable(value))
                for column, value in row.items()
                if column not in fields
            )
        )
    return sorted(comparable, key=repr)


def _without(document: dict[str, Any], fields: set[str], prefix: str = "") -> dict[str, Any]:
    """``document`` without the dotted ``fields``."""
    kept = {}
    for key, value in document.items():
        path = f"{prefix}{key}"
        if path in fields:
            continue
        kept[key] = _without(value, fields, f"{path}.") if isinstance(value, dict) else value
    return kept


def _files_under(lake: Lake, area: str = "") -> list[str]:
    from pyarrow.fs import FileSelector, FileType

    selector = FileSelector(lake.path(area) if area else lake.root, recursive=True, allow_not_found=True)
    return sorted(info.path for info in lake.fs.get_file_info(selector) if info.type == FileType.File)


def _stat_column(field: str) -> str | None:
    """``updated_at`` of ``min.updated_at`` (file statistics are named by their column)."""
    kind, _, column = field.partition(".")
    return column if kind in ("min", "max", "null_count") else None


def table_snapshot(lake: Lake, path: str) -> dict[str, Any]:
    """A Delta table's current version: protocol, metadata, schema and its active files,
    each with its statistics and rows (a history table: its newest rows instead)."""
    table = lake.delta_table(path)
    name = f"lake:{lake.relative(path)}"
    fields = not_compared(name)
    metadata = table.metadata()
    protocol = table.protocol()
    picture: dict[str, Any] = {
        "protocol": {key: getattr(protocol, key) for key in ("min_reader_version", "min_writer_version")},
        "metadata": {
            key: getattr(metadata, key)
            for key in ("id", "name", "description", "partition_columns", "created_time", "configuration")
            if f"metadata.{key}" not in fields
        },
        "schema": table.schema().to_json(),
    }
    if name in HISTORIES:
        picture["rows"] = comparable_rows(table.to_pyarrow_table(), name)
        return picture
    files: dict[str, Any] = {}
    for action in pa.table(table.get_add_actions(flatten=True)).to_pylist():
        key = without_random_names(action["path"])
        if "<uuid>" in key:  # a name that says nothing: its partition tells it apart
            partition = {
                field[len("partition.") :]: value for field, value in action.items() if field.startswith("partition.")
            }
            key += f" {_comparable(partition)}" if partition else ""
        entry = {
            field: _comparable(value)
            for field, value in action.items()
            if f"add.{field}" not in fields and _stat_column(field) not in fields
        }
        entry["rows"] = comparable_rows(
            pq.read_table(posixpath.join(path, unquote(action["path"])), filesystem=lake.fs), name
        )
        files.setdefault(key, []).append(entry)
    # files that differ only in a random name are told apart by their contents
    picture["files"] = {
        key if len(entries) == 1 else f"{key} #{n}": entry
        for key, entries in sorted(files.items())
        for n, entry in enumerate(sorted(entries, key=repr), 1)
    }
    return picture


def file_snapshot(lake: Lake, path: str) -> Any:
    """A committed file outside the tables: a JSON document's fields, a Parquet file's rows,
    else its bytes' digest."""
    name = f"lake:{lake.relative(path)}"
    if path.endswith(".json"):
        document = json.loads(lake.read_bytes(path))
        if isinstance(document, dict):
            document = _without(document, not_compared(name))
        return _comparable(document)
    if path.endswith(".parquet"):
        return comparable_rows(pq.read_table(path, filesystem=lake.fs), name)
    return hashlib.sha256(lake.read_bytes(path)).hexdigest()


def lake_snapshot(lake: Lake) -> dict[str, Any]:
    """Every area of the lake: each Delta table (by its folder) and each other file (by its
    path, random parts of file names masked), as :func:`table_snapshot` and
    :func:`file_snapshot` picture them."""
    paths = _files_under(lake)
    tables = sorted({path.split("/_delta_log/")[0] for path in paths if "/_delta_log/" in path})
    files = [path for path in paths if not any(path.startswith(f"{table}/") for table in tables)]
    picture: dict[str, Any] = {}
    for path, picture_of in [*((t, table_snapshot) for t in tables), *((f, file_snapshot) for f in files)]:
        if "*" not in not_compared(f"lake:{lake.relative(path)}"):
            picture[without_random_names(lake.relative(path))] = picture_of(lake, path)
    return picture


def warehouse_snapshot(
    path: Path, schemas: tuple[str, ...] | None = LAYERS, views: bool = False
) -> dict[str, list[tuple]]:
    """Rows, sorted, of every base table (and with ``views`` every view) of ``schemas``
    (None: every schema), by ``<schema>.<table>``."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        listed = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('information_schema', 'pg_catalog') AND (table_type = 'BASE TABLE' OR ?)"
            " ORDER BY 1, 2",
            [views],
        ).fetchall()
        return {
            f"{schema}.{table}": comparable_rows(
                con.sql(f'FROM "{schema}"."{table}"').to_arrow_table(), f"warehouse:{schema}.{table}"
            )
            for schema, table in listed
            if schemas is None or schema in schemas
        }
    finally:
        con.close()


def snapshot(data_dir: Path, lake: Lake | None = None) -> dict[str, Any]:
    """The lake (by default the folder ``data_dir/lake``) and every table and view of the
    warehouse under ``data_dir``."""
    return {
        "lake": lake_snapshot(lake or open_lake(str(data_dir / "lake"))),
        "warehouse": warehouse_snapshot(data_dir / "warehouse" / "sluice.duckdb", schemas=None, views=True),
    }


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else f"{text[:117]}..."


def _rows_difference(where: str, left: list[tuple], right: list[tuple]) -> list[str]:
    """What differs between two lists of rows: how many, and a few rows column by column
    (rows paired by their first column, usually the key)."""
    only_left = list((Counter(map(repr, left)) - Counter(map(repr, right))).elements())
    only_right = list((Counter(map(repr, right)) - Counter(map(repr, left))).elements())
    by_repr = {repr(row): row for row in (*left, *right)}
    lefts = [dict(by_repr[text]) for text in only_left]
    rights = {next(iter(dict(by_repr[text]).items()), None): dict(by_repr[text]) for text in only_right}
    lines = [f"{where}: {len(left)} vs {len(right)} rows, {len(only_left)} and {len(only_right)} not in the other"]
    for row in lefts[:3]:
        first = next(iter(row.items()), None)
        other = rights.get(first)
        if other is None:
            lines.append(f"{where}: only in the first: {_show(row)}")
            continue
        changed = [
            f"{c} {_show(row.get(c))} vs {_show(other.get(c))}" for c in {**row, **other} if row.get(c) != other.get(c)
        ]
        lines.append(f"{where}: {first[0]}={first[1]!r}: {'; '.join(changed)}")
    if not lefts and only_right:
        lines.append(f"{where}: only in the second: {_show(dict(by_repr[only_right[0]]))}")
    return lines


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(row, tuple) for row in value)


def _difference(where: str, left: Any, right: Any) -> list[str]:
    if left == right:
        return []
    if isinstance(left, dict) and isinstance(right, dict):
        lines = []
        for key in sorted(set(left) | set(right), key=str):
            if key not in right:
                lines.append(f"{where} {key}: only in the first")
            elif key not in left:
                lines.append(f"{where} {key}: only in the second")
            else:
                lines += _difference(f"{where} {key}", left[key], right[key])
        return lines
    if _is_rows(left) and _is_rows(right):
        return _rows_difference(where, left, right)
    if isinstance(left, list) and isinstance(right, list):
        lines = [f"{where}: {len(left)} vs {len(right)} items"] if len(left) != len(right) else []
        for index, (one, other) in enumerate(zip(left, right, strict=False)):
            lines += _difference(f"{where}[{index}]", one, other)
        return lines
    return [f"{where}: {_show(left)} vs {_show(right)}"]


def differences(left: dict[str, Any], right: dict[str, Any], limit: int = 60) -> list[str]:
    """What differs, one line per table, file, field or row (empty when equal), the first ``limit`` lines."""
    lines = _difference("lake", left["lake"], right["lake"]) + _difference(
        "warehouse", left["warehouse"], right["warehouse"]
    )
    return lines if len(lines) <= limit else [*lines[:limit], f"... and {len(lines) - limit} more"]
