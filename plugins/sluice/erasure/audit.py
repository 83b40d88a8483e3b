"""The erasure audit: an append-only Delta table ``erasure/audit``, one row per step of a
request (resolved, erased, purged, verified, done), never a raw identifier.

A row holds the request id, the salted hash of the request's identifiers (to answer
"was this person erased?" without keeping who), the step, its time, per store what
it removed (JSON: rows and files per table), and the verification's outcome.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from sluice.lake.storage import Lake

SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("subject_hash", pa.string(), nullable=False),
        pa.field("step", pa.string(), nullable=False),
        pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("received_at", pa.timestamp("us", tz="UTC")),
        pa.field("details", pa.string()),
    ]
)


def audit_path(lake: Lake) -> str:
    return lake.path("erasure", "audit")


def append(
    lake: Lake,
    request_id: str,
    subject_hash: str,
    step: str,
    details: Mapping[str, Any] | None = None,
    received_at: datetime | None = None,
) -> None:
    row = {
        "request_id": request_id,
        "subject_hash": subject_hash,
        "step": step,
        "at": datetime.now(UTC),
        "received_at": received_at,
        "details": json.dumps(details or {}, sort_keys=True, default=str),
    }
    lake.append_to_table(audit_path(lake), pa.Table.from_pylist([row], schema=SCHEMA))


def steps(lake: Lake, request_id: str) -> dict[str, dict[str, Any]]:
    """The steps a request has completed, each with its details (the latest row of each)."""
    table = lake.delta_table(audit_path(lake))
    if table is None:
        return {}
    done: dict[str, dict[str, Any]] = {}
    for row in table.to_pyarrow_table().sort_by([("at", "ascending")]).to_pylist():
        if row["request_id"] == request_id:
            done[row["step"]] = {"at": row["at"], **json.loads(row["details"] or "{}")}
    return done


def rows(lake: Lake) -> list[dict[str, Any]]:
    table = lake.delta_table(audit_path(lake))
    return [] if table is None else table.to_pyarrow_table().sort_by([("at", "ascending")]).to_pylist()
