"""Searching what a store keeps on disk for people's values, independently of the
product's own scan (:mod:`sluice.erasure.verify`).

A search that finds nothing proves nothing unless it is shown to find the values when
they are there: each test that uses these runs the same search before the erasure (or
for a person not erased) and asserts that it finds them.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def bytes_holding(paths: Iterable[Path], values: Iterable[str]) -> set[str]:
    """The values whose UTF-8 bytes are in one of the files (case aside), as they lie on
    disk: live rows, deleted ones left in free blocks, a write-ahead log."""
    data = b"".join(path.read_bytes().lower() for path in paths if path.exists())
    return {value for value in values if value.lower().encode() in data}


def files_holding(root: Path | str, values: Iterable[str], fs: Any = None) -> dict[str, set[str]]:
    """Per value, the files under ``root`` (relative paths) that hold it, case aside.

    Every file is searched as its bytes (a Delta log, manifests, state, JSON of any kind);
    a Parquet file (data, quarantine, checkpoints, index entries) also as its decoded
    rows, since compression hides its values from a byte search.

    :param fs: the pyarrow filesystem ``root`` is on (a lake on S3); by default a folder
    """
    from pyarrow.fs import FileSelector, FileType, LocalFileSystem

    fs, root = fs or LocalFileSystem(), str(root)
    infos = fs.get_file_info(FileSelector(root, recursive=True, allow_not_found=True))
    found: dict[str, set[str]] = {value: set() for value in values}
    for path in sorted(info.path for info in infos if info.type == FileType.File):
        with fs.open_input_file(path) as file:
            data = file.read()
        if path.endswith(".parquet"):
            rows = pq.read_table(pa.BufferReader(data)).to_pylist()
            data += json.dumps(rows, default=str, ensure_ascii=False).encode()
        data = data.lower()
        for value in found:
            if value.lower().encode() in data:
                found[value].add(posixpath.relpath(path, root))
    return found


def delta_stats_holding(table: Path, column: str, values: Iterable[str]) -> dict[str, set[str]]:
    """Per value, the log files of the Delta table at ``table`` (commits and checkpoints)
    whose file statistics give ``column`` that value as its minimum or maximum.

    Identifiers such as user ids are numbers that a text search would find everywhere;
    in a table's log they show up only as the statistics of the files that hold them.
    """
    found: dict[str, set[str]] = {str(value): set() for value in values}
    for path in sorted((table / "_delta_log").iterdir()):
        if path.suffix == ".json":
            actions = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        elif path.name.endswith(".checkpoint.parquet"):
            actions = pq.read_table(path).to_pylist()
        else:
            continue
        for action in actions:
            for kind in ("add", "remove"):
                stats = (action.get(kind) or {}).get("stats")
                parsed = json.loads(stats) if isinstance(stats, str) else stats or {}
                for bound in ("minValues", "maxValues"):
                    value = str((parsed.get(bound) or {}).get(column))
                    if value in found:
                        found[value].add(path.name)
    return found


def metadata_holding(database: Path, values: Iterable[str]) -> dict[str, set[str]]:
    """Per value, the columns (``table.column``) of an Airflow metadata database on SQLite
    that hold it in some row, as text and case aside: XComs, rendered fields, run confs,
    the audit log, every table there is."""
    import sqlite3

    con = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    found: dict[str, set[str]] = {value: set() for value in values}
    try:
        tables = [row[0] for row in con.execute("select name from sqlite_master where type = 'table'")]
        for table in tables:
            for column in [row[1] for row in con.execute(f'pragma table_info("{table}")')]:
                for value in found:
                    (count,) = con.execute(
                        f'select count(*) from "{table}" where instr(lower(cast("{column}" as text)), ?) > 0',
                        [value.lower()],
                    ).fetchone()
                    if count:
                        found[value].add(f"{table}.{column}")
    finally:
        con.close()
    return found
