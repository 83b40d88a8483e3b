"""One erasure request from start to proof, resumable step by step.

1. resolve the request's identifiers to every identifier held for the person, read the
   values of their declared personal columns, and keep both with the request (a retry
   must find them after the linking rows are gone);
2. suppress them: landings from now on drop the person's records;
3. erase the warehouse: every declared table of every layer, one transaction (a DuckDB
   file is then rewritten so no deleted row survives in it);
4. erase the lake: per bronze table, one commit rewriting only the files the index
   names (tables that link identifiers last, so a retry can still resolve);
5. purge, once ``SLUICE_ERASURE_RETENTION_HOURS`` have passed since the lake erasure
   (0: in the same run): every older version of the tables it touched (their files and
   log entries, so time travel before the purge ends), index versions, quarantine;
6. verify: no row of any declared warehouse table, and no file under the lake, holds
   an identifier of the person, nor a personal value only they had (:mod:`sluice.erasure.pii`);
7. close: the request's identifiers and values are deleted from the requests table and purged.

Each step appends to the audit (:mod:`sluice.erasure.audit`). A rerun of a finished
request changes nothing; a killed run's retry redoes only what is not in the audit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sluice.core import config
from sluice.core.sources import SourceConfig, load_source, source_names
from sluice.erasure import audit
from sluice.erasure.pii import is_pii, person_values, unattributed, without_pii
from sluice.erasure.purge import purge_source
from sluice.erasure.registry import personal_tables
from sluice.erasure.requests import ErasureRequest, add_identifiers, close_request
from sluice.erasure.resolve import RequestError, resolve
from sluice.erasure.verify import declared_columns, scan_lake
from sluice.erasure.warehouse import erase_from_warehouse, held_identifiers
from sluice.erasure.warehouse import residue as warehouse_residue
from sluice.lake.index import identifier_hashes, normalise
from sluice.lake.rewrite import ErasureError, erase_from_table
from sluice.lake.storage import Lake
from sluice.lake.suppression import suppress

log = logging.getLogger(__name__)


def request_hash(request: ErasureRequest, salt: bytes) -> str:
    """The salted hash the audit keeps for the person of a request."""
    given = sorted(
        (kind, normalise(kind, v)) for kind, values in without_pii(request.identifiers).items() for v in values
    )
    return hmac.new(salt, json.dumps(given).encode(), hashlib.sha256).hexdigest()


def _lake_order(sources: list[SourceConfig]) -> list[tuple[SourceConfig, Any]]:
    """Personal streams, the ones linking several identifier types last."""
    streams = [(source, stream) for source in sources for stream in source.streams if stream.identifiers]
    return sorted(streams, key=lambda pair: len(set(pair[1].identifier_types.values())))


def process_request(
    lake: Lake,
    request: ErasureRequest,
    salt: bytes,
    connect_warehouse: Any,
    compact: Any = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Carry a request as far as it can go now; returns its state and what each step did.

    :param connect_warehouse: returns a new DB-API connection to the warehouse
    :param compact: rewrites the warehouse file after its deletes (DuckDB), or None
    :raises RequestError: the request names nobody the platform holds (nothing changed)
    :raises ErasureError: the verification found the person somewhere (the request stays open)
    """
    now = now or datetime.now(UTC)
    done = audit.steps(lake, request.request_id)
    subject = request_hash(request, salt)

    def step(name: str, details: Mapping[str, Any]) -> None:
        audit.append(lake, request.request_id, subject, name, details, request.received_at)
        done[name] = {"at": now, **details}

    if "done" in done:  # sent again: drop the copy of its identifiers the new request made
        close_request(lake, request.request_id)
        return {"request_id": request.request_id, "state": "done", "changed": False}
    sources = [load_source(name) for name in source_names()]
    tables = personal_tables()

    def held(known: Mapping[str, set[str]]) -> Mapping[str, set[str]]:
        connection = connect_warehouse()
        try:
            return held_identifiers(connection, tables, known)
        finally:
            connection.close()

    only_in_warehouse = any(table.store == "airbyte" for table in tables)
    given = without_pii(request.identifiers)
    try:
        identifiers = resolve(lake, sources, given, salt, held if only_in_warehouse else None)
    except RequestError:
        if "resolved" not in done:
            raise
        identifiers = {k: {normalise(k, v) for v in values} for k, values in given.items()}
    if "resolved" in done:  # kept with the request when it was resolved
        personal = {kind: set(values) for kind, values in request.identifiers.items() if is_pii(kind)}
    else:
        personal = person_values(lake, sources, identifiers, salt)
        add_identifiers(lake, request, {**identifiers, **personal})
        step(
            "resolved",
            {
                "identifiers": {kind: len(values) for kind, values in identifiers.items()},
                "personal_values": {kind: len(values) for kind, values in personal.items()},
            },
        )
    suppress(lake, identifier_hashes(identifiers, salt))

    if "erased_warehouse" not in done:
        connection = connect_warehouse()
        try:
            removed = erase_from_warehouse(connection, tables, identifiers)
        finally:
            connection.close()
        if compact is not None:
            compact()
        step("erased_warehouse", {"rows_removed": removed})

    if "erased_lake" not in done:
        erased = {}
        for source, stream in _lake_order(sources):
            result = erase_from_table(lake, source.name, stream, identifiers, salt)
            erased[result.table] = {
                "files_holding": result.files_holding,
                "files_rewritten": result.files_rewritten,
                "rows_removed": result.rows_removed,
            }
        step("erased_lake", {"tables": erased})

    if "purged" not in done:
        hours = config.erasure_retention_hours()
        due = done["erased_lake"]["at"] + timedelta(hours=hours)
        if now < due:
            return {"request_id": request.request_id, "state": "purge_pending", "purge_due": due.isoformat()}
        purged = {}
        for source in sources:
            streams = [s.name for s in source.streams if s.identifiers]
            if streams:
                # the retention has passed: every older version of these tables goes now
                purged[source.name] = purge_source(lake, source, identifiers, 0, streams)
        step("purged", {"sources": purged})

    declared = declared_columns(sources)
    # the pending request itself is the one copy kept until the end: closed below
    theirs = unattributed(lake, sources, personal)
    findings = scan_lake(lake, {**identifiers, **theirs}, declared, exclude=["erasure/requests"])
    connection = connect_warehouse()
    try:
        residue = warehouse_residue(connection, tables, identifiers, theirs)
    finally:
        connection.close()
    outcome = {
        "clean": not findings and not residue,
        "lake_findings": [{"path": lake.relative(f.path), "type": f.kind, "where": f.where} for f in findings],
        "warehouse_rows": residue,
    }
    step("verified", outcome)
    if not outcome["clean"]:
        raise ErasureError(
            f"request {request.request_id}: the person is still held in {len(findings)} lake file(s) and"
            f" {sum(residue.values())} warehouse row(s): {outcome['lake_findings'][:5]} {residue}"
        )
    close_request(lake, request.request_id)
    if left := scan_lake(lake, {**identifiers, **personal}, declared, folder="erasure/requests"):
        raise ErasureError(f"request {request.request_id}: its identifiers are still in {len(left)} request file(s)")
    step("done", {})
    return {"request_id": request.request_id, "state": "done", "changed": True, "steps": done}
