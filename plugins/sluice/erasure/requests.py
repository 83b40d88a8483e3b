"""Erasure requests: who to erase, kept only until the erasure is done.

A request names a person by one or more identifiers (``{"email": "ada@example.com"}``)
and gets an id. Requests arrive as the ``gdpr_erasure`` DAG run's conf (``{"requests":
[{...}, ...]}``, each optionally with its own ``request_id``) or as rows written to the
lake's requests table ``erasure/requests`` (columns ``request_id``, ``identifier_type``,
``identifier``, ``received_at``). The table holds raw identifiers, so a finished
request's rows are deleted and the table purged at once (:func:`close_request`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from sluice.erasure.resolve import RequestError
from sluice.lake.storage import Lake

SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("identifier_type", pa.string(), nullable=False),
        pa.field("identifier", pa.string(), nullable=False),
        pa.field("received_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


@dataclass(frozen=True)
class ErasureRequest:
    request_id: str
    identifiers: dict[str, list[str]] = field(default_factory=dict)
    received_at: datetime | None = None


def requests_path(lake: Lake) -> str:
    return lake.path("erasure", "requests")


def parse_requests(conf: Any, declared: Iterable[str]) -> list[ErasureRequest]:
    """Requests from a DAG run's conf; :class:`RequestError` names what is wrong and nothing
    is recorded when any request is malformed."""
    declared = sorted(set(declared))
    if conf in (None, {}):
        return []
    if not isinstance(conf, Mapping) or not isinstance(conf.get("requests"), list):
        raise RequestError('expected a conf like {"requests": [{"email": "..."}]}')
    requests = []
    for n, entry in enumerate(conf["requests"], start=1):
        if not isinstance(entry, Mapping):
            raise RequestError(f"request {n} is not an object of identifiers by type")
        request_id = str(entry.get("request_id") or uuid.uuid4())
        identifiers = {kind: value for kind, value in entry.items() if kind != "request_id"}
        if not identifiers:
            raise RequestError(f"request {n} ({request_id}) names no identifier; types: {declared}")
        if unknown := sorted(set(identifiers) - set(declared)):
            raise RequestError(
                f"request {n} ({request_id}): identifier type(s) {unknown} are declared by no stream;"
                f" declared: {declared}"
            )
        values = {}
        for kind, value in identifiers.items():
            listed = value if isinstance(value, list) else [value]
            if not listed or any(v is None or not str(v).strip() or isinstance(v, dict | list) for v in listed):
                raise RequestError(f"request {n} ({request_id}): {kind} must be a non-empty value or list of values")
            values[kind] = [str(v) for v in listed]
        requests.append(ErasureRequest(request_id, values))
    return requests


def record_requests(lake: Lake, requests: Iterable[ErasureRequest]) -> int:
    """Append requests to the table (one commit); those already there are not added again."""
    known = {request.request_id for request in pending_requests(lake)}
    now = datetime.now(UTC)
    rows = [
        {"request_id": request.request_id, "identifier_type": kind, "identifier": value, "received_at": now}
        for request in requests
        if request.request_id not in known
        for kind, values in request.identifiers.items()
        for value in values
    ]
    if rows:
        lake.append_to_table(requests_path(lake), pa.Table.from_pylist(rows, schema=SCHEMA))
    return len({row["request_id"] for row in rows})


def add_identifiers(lake: Lake, request: ErasureRequest, identifiers: Mapping[str, Iterable[str]]) -> int:
    """Keep identifiers resolved for a request with it, so a retry finds them even after
    the rows linking them were erased; returns how many were new."""
    given = {(kind, value) for kind, values in request.identifiers.items() for value in values}
    now = request.received_at or datetime.now(UTC)
    rows = [
        {"request_id": request.request_id, "identifier_type": kind, "identifier": value, "received_at": now}
        for kind, values in identifiers.items()
        for value in sorted(values)
        if (kind, value) not in given
    ]
    if rows:
        lake.append_to_table(requests_path(lake), pa.Table.from_pylist(rows, schema=SCHEMA))
    return len(rows)


def pending_requests(lake: Lake) -> list[ErasureRequest]:
    """Every request not yet closed, oldest first."""
    table = lake.delta_table(requests_path(lake))
    if table is None:
        return []
    grouped: dict[str, ErasureRequest] = {}
    for row in table.to_pyarrow_table().sort_by([("received_at", "ascending")]).to_pylist():
        request = grouped.setdefault(row["request_id"], ErasureRequest(row["request_id"], {}, row["received_at"]))
        request.identifiers.setdefault(row["identifier_type"], []).append(row["identifier"])
    return list(grouped.values())


def close_request(lake: Lake, request_id: str) -> None:
    """Delete the request's rows and purge them from the table's files and log."""
    from sluice.erasure.purge import purge_table

    table = lake.delta_table(requests_path(lake))
    if table is None:
        return
    table.delete(f"request_id = '{request_id.replace(chr(39), chr(39) * 2)}'")  # an id, never an identifier
    purge_table(lake, requests_path(lake), retention_hours=0)
