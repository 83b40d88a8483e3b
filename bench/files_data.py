"""The ``files`` benchmark's input: one deterministic file per format, of a given size,
and the source that declares them."""

from __future__ import annotations

import json
from pathlib import Path

SOURCE = "bench"
RECORD_TAG = "record"
SUFFIX = {"jsonl": "jsonl", "csv": "csv", "xml": "xml"}
COLUMNS = ("id", "name", "email", "amount", "created_at", "city", "note")
#: the source ``bench``: one stream per format, named after it
STREAMS = {
    "jsonl": {"format": "jsonl", "pattern": "*.jsonl", "record_key": "id"},
    "csv": {"format": "csv", "pattern": "*.csv", "record_key": "id"},
    "xml": {"format": "xml", "pattern": "*.xml", "record_key": "id", "record_path": RECORD_TAG},
}


def declare(include: Path) -> None:
    folder = include / "sources"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{SOURCE}.yml").write_text(json.dumps({"driver": "files", "streams": STREAMS}))


def _record(i: int) -> dict:
    return {
        "id": i,
        "name": f"Customer {i:08d}",
        "email": f"user{i}@example{i % 97}.com",
        "amount": round((i * 7919 % 100_000) / 100, 2),
        "created_at": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
        "city": ("Lisbon", "Oslo", "Quito", "Hanoi", "Accra")[i % 5],
        "note": "lorem ipsum dolor sit amet " * (1 + i % 3),
    }


def _line(fmt: str, i: int) -> str:
    r = _record(i)
    if fmt == "jsonl":
        r["address"] = {"city": r.pop("city"), "zip": f"{i % 100_000:05d}"}
        return json.dumps(r) + "\n"
    if fmt == "csv":
        return ",".join(str(r[c]) for c in COLUMNS) + "\n"
    return f"<{RECORD_TAG}>" + "".join(f"<{c}>{r[c]}</{c}>" for c in COLUMNS) + f"</{RECORD_TAG}>\n"


def write_file(fmt: str, path: Path, size_mb: float) -> int:
    """Records until the file reaches ``size_mb`` MB; returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    limit, written, i = int(size_mb * 1024 * 1024), 0, 0
    with path.open("w", encoding="utf-8") as out:
        head = {"csv": ",".join(COLUMNS) + "\n", "xml": "<records>\n"}.get(fmt, "")
        out.write(head)
        written += len(head)
        while written < limit:
            chunk = "".join(_line(fmt, n) for n in range(i, i + 1000))
            out.write(chunk)
            written += len(chunk)
            i += 1000
        if fmt == "xml":
            out.write("</records>\n")
    return i
