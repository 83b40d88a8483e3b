"""The ``files`` benchmark's input: one deterministic file per format, of a given size,
and the source that declares them (for ``files_compare``, also the source-s3 sources that
read them from a bucket)."""

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


#: ``files_compare``: per format, a source of the local driver running Airbyte's source-s3
AIRBYTE_SOURCE = {"jsonl": "airbyte_jsonl", "csv": "airbyte_csv"}


def declare(include: Path) -> None:
    folder = include / "sources"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{SOURCE}.yml").write_text(json.dumps({"driver": "files", "streams": STREAMS}))


def declare_airbyte(include: Path, bucket: str, s3_env: dict[str, str]) -> None:
    """Per format, a source-s3 source reading ``<fmt>/*`` from ``bucket`` on the S3 server
    of ``s3_env`` (its throwaway keys go in the config: the declaration lives in a
    temporary folder)."""
    credentials = {
        "auth_type": "iam_user",
        "aws_access_key_id": s3_env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": s3_env["AWS_SECRET_ACCESS_KEY"],
    }
    for fmt, name in AIRBYTE_SOURCE.items():
        config = {
            "bucket": bucket,
            "endpoint": s3_env["AWS_ENDPOINT_URL"],
            "region_name": s3_env.get("AWS_DEFAULT_REGION", "us-east-1"),
            "credentials": credentials,
            "streams": [{"name": fmt, "globs": [f"{fmt}/*.{SUFFIX[fmt]}"], "format": {"filetype": fmt}}],
        }
        declaration = {"connector": "source-s3", "config": config, "streams": {fmt: {"record_key": "id"}}}
        (include / "sources" / f"{name}.yml").write_text(json.dumps(declaration))


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
