"""Incident state in the lake: one alert per incident, kept from open to resolved.

The Delta table ``ops/incidents`` holds one row per episode of an incident (its key, as
``ingest_faker/land``, and a counter that grows each time it opens again). Every change
is a Delta merge that only commits when no other writer committed since the row was
read (delta-rs checks for conflicting commits; on S3 the commit is a conditional PUT):
two callbacks racing on one incident, such as the mapped copies of a task failing
together, cannot both open it. The loser reads again and counts a repeat. Each row also
carries a revision that the merge checks, so an update never overwrites one it did not see.

Tasks succeed far more often than incidents open, and each success asks "is something
open to resolve?": markers ``ops/open_incidents/<key>/<episode>.json`` answer that with
one listing instead of a table read. The table is the truth; a marker is written after
its episode opens (again on each repeat) and removed after it resolves, so a missing
marker only delays a resolution until the next repeat, and a stale one costs a read.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from sluice.alerting import settings
from sluice.alerting.messages import Event
from sluice.alerting.routing import Route
from sluice.lake.commit import TryAgain, commit_with_retry, lost_race
from sluice.lake.storage import Lake, maintain_table

OPEN, RESOLVED = "open", "resolved"
#: Delivery of an incident's latest message: being sent, sent to Slack, written to the task
#: log (no Slack connection), or failed (sent again with the next repeat).
PENDING, SENT, LOGGED, FAILED = "pending", "sent", "logged", "failed"
#: A message still "pending" this long was lost with its process: the next repeat sends it.
PENDING_EXPIRES = timedelta(minutes=10)
ATTEMPTS = 8
#: Every this many table versions, small files are compacted and old ones vacuumed.
MAINTENANCE_EVERY = 100


class IncidentStateError(RuntimeError):
    """The incident table could not be changed (too many conflicting writers)."""


@dataclass(frozen=True)
class Incident:
    """One episode of an incident, as the table holds it."""

    incident_key: str
    episode: int
    status: str
    kind: str
    title: str
    what: str
    dag_id: str | None
    task_id: str | None
    run_id: str | None
    map_index: int
    interval_start: datetime | None
    interval_end: datetime | None
    log_url: str | None
    channel: str | None
    owner: str | None
    occurrences: int
    opened_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    delivery: str
    delivery_error: str | None
    revision: int
    updated_at: datetime


def _schema() -> Any:
    """The table's Arrow schema, in :class:`Incident`'s field order."""
    import pyarrow as pa

    def arrow_type(annotation: str) -> Any:  # annotations are strings here (postponed evaluation)
        if annotation.startswith("int"):
            return pa.int64()
        if annotation.startswith("datetime"):
            return pa.timestamp("us", tz="UTC")
        return pa.string()

    return pa.schema([pa.field(f.name, arrow_type(str(f.type))) for f in dataclasses.fields(Incident)])


def _rows_where(table: Any, column: str, value: str) -> list[dict[str, Any]]:
    """The rows of ``table`` whose ``column`` is ``value``; only files whose statistics
    allow it are read.

    Merges write strings as ``string_view``, which pyarrow (26) cannot compare once a file
    holds several rows, as it does after a merge rewrites a compacted file: compare as
    ``string``.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    dataset = table.to_pyarrow_dataset(file_pruning_predicate=[(column, "=", value)])
    return dataset.to_table(filter=ds.field(column).cast(pa.string()) == value).to_pylist()


@dataclass(frozen=True)
class Change:
    """What a transaction writes: ``row``, as a new episode (``insert``) or an update, and
    whether its message must be sent now."""

    row: Incident
    insert: bool
    notify: bool


class IncidentStore:
    """The incidents of the lake ``lake``.

    :param lake: the lake holding the incident table and the open markers
    :param folder: the table's folder, relative to the lake's root
    :param markers: the open markers' folder, relative to the lake's root
    """

    def __init__(
        self, lake: Lake, folder: str = settings.INCIDENTS_FOLDER, markers: str = settings.OPEN_MARKERS_FOLDER
    ):
        self.lake = lake
        self.table_path = lake.path(folder)
        self.markers_path = lake.path(markers)

    # -- reading

    def current(self, key: str) -> Incident | None:
        """The latest episode of ``key`` (open or resolved), or None if it never opened."""
        table = self.lake.delta_table(self.table_path)
        return self._latest(table, key) if table is not None else None

    def open_incidents(self) -> list[Incident]:
        """Every open incident, newest first (for the health page)."""
        table = self.lake.delta_table(self.table_path)
        if table is None:
            return []
        rows = _rows_where(table, "status", OPEN)
        return sorted((Incident(**row) for row in rows), key=lambda i: i.opened_at, reverse=True)

    def may_be_open(self, key: str) -> bool:
        """False when ``key`` surely has no open episode (one listing, no table read)."""
        return bool(self.lake.list_files(self._marker_folder(key)))

    # -- changing

    def occurred(self, key: str, event: Event, route: Callable[[], Route], now: datetime | None = None) -> Change:
        """Record an occurrence of ``key``: a new episode if none is open (to be sent), else a
        counted repeat (sent only when the episode's message never got through)."""
        now = now or datetime.now(UTC)

        def decide(current: Incident | None) -> Change:
            if current is None or current.status == RESOLVED:
                where = route()
                row = Incident(
                    incident_key=key,
                    episode=current.episode + 1 if current else 1,
                    status=OPEN,
                    kind=event.kind,
                    title=event.title,
                    what=event.what,
                    dag_id=event.dag_id,
                    task_id=event.task_id,
                    run_id=event.run_id,
                    map_index=event.map_index,
                    interval_start=event.interval_start,
                    interval_end=event.interval_end,
                    log_url=event.log_url,
                    channel=where.channel,
                    owner=where.owner,
                    occurrences=1,
                    opened_at=now,
                    last_seen_at=now,
                    resolved_at=None,
                    delivery=PENDING,
                    delivery_error=None,
                    revision=1,
                    updated_at=now,
                )
                return Change(row, insert=True, notify=True)
            undelivered = current.delivery == FAILED or (
                current.delivery == PENDING and now - current.updated_at > PENDING_EXPIRES
            )
            row = dataclasses.replace(
                current,
                occurrences=current.occurrences + 1,
                last_seen_at=now,
                # the latest occurrence is what an operator opening the incident wants to see
                what=event.what or current.what,
                run_id=event.run_id,
                map_index=event.map_index,
                interval_start=event.interval_start or current.interval_start,
                interval_end=event.interval_end or current.interval_end,
                log_url=event.log_url or current.log_url,
                delivery=PENDING if undelivered else current.delivery,
                revision=current.revision + 1,
                updated_at=now,
            )
            return Change(row, insert=False, notify=undelivered)

        change = self._transact(key, decide)
        assert change is not None
        self._write_marker(change.row)
        return change

    def resolve(
        self, key: str, *, run_id: str | None = None, map_index: int = -1, now: datetime | None = None
    ) -> Change | None:
        """Resolve the open episode of ``key``; None when nothing was open.

        A success in the run that failed, at another map index, is a sibling of the failed
        mapped task, not its recovery: it resolves nothing.
        """
        if not self.may_be_open(key):
            return None
        now = now or datetime.now(UTC)

        def decide(current: Incident | None) -> Change | None:
            if current is None or current.status == RESOLVED:
                return None
            if run_id is not None and run_id == current.run_id and map_index != current.map_index:
                return None
            row = dataclasses.replace(
                current,
                status=RESOLVED,
                resolved_at=now,
                delivery=PENDING,
                delivery_error=None,
                revision=current.revision + 1,
                updated_at=now,
            )
            return Change(row, insert=False, notify=True)

        change = self._transact(key, decide)
        if change is not None:
            self._remove_marker(change.row)
        else:
            self._remove_stale_markers(key)
        return change

    def delivered(self, row: Incident, delivery: str, error: str | None = None) -> None:
        """Record how the message of ``row``'s episode went (``sent``, ``logged``, ``failed``)."""

        def decide(current: Incident | None) -> Change | None:
            if current is None or current.episode != row.episode or current.status != row.status:
                return None  # a later change owns the message state now
            return Change(
                dataclasses.replace(
                    current,
                    delivery=delivery,
                    delivery_error=error,
                    revision=current.revision + 1,
                    updated_at=datetime.now(UTC),
                ),
                insert=False,
                notify=False,
            )

        self._transact(row.incident_key, decide)

    # -- the table

    def _transact(self, key: str, decide: Callable[[Incident | None], Change | None]) -> Change | None:
        """Read ``key``'s latest episode, let ``decide`` change it, and commit that unless
        another writer committed first; then read and decide again."""

        def attempt(_: int) -> Change | None:
            table = self._table()
            change = decide(self._latest(table, key))
            if change is not None and not self._commit(table, change):
                raise TryAgain("its guard matched no row")
            return change

        try:
            return commit_with_retry(attempt, f"incident {key!r}", attempts=ATTEMPTS)
        except Exception as error:
            if lost_race(error):
                raise IncidentStateError(f"incident {key!r}: {ATTEMPTS} attempts lost to concurrent writers") from error
            raise

    def _table(self) -> Any:
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError

        table = self.lake.delta_table(self.table_path)
        if table is not None:
            return table
        try:
            return DeltaTable.create(
                self.lake.uri(self.table_path),
                schema=_schema(),
                mode="ignore",
                storage_options=dict(self.lake.storage_options),
                description="Sluice alert incidents: one row per episode",
            )
        except DeltaError:  # created by another writer at the same moment
            table = self.lake.delta_table(self.table_path)
            if table is None:
                raise
            return table

    @staticmethod
    def _latest(table: Any, key: str) -> Incident | None:
        rows = _rows_where(table, "incident_key", key)
        return Incident(**max(rows, key=lambda row: row["episode"])) if rows else None

    def _commit(self, table: Any, change: Change) -> bool:
        """Merge ``change`` into ``table``; False when its guard matched no row."""
        import pyarrow as pa

        row = dataclasses.asdict(change.row)
        source = pa.Table.from_pylist([row], schema=_schema())
        merge = table.merge(
            source,
            predicate="t.incident_key = s.incident_key AND t.episode = s.episode",
            source_alias="s",
            target_alias="t",
        )
        if change.insert:
            metrics = merge.when_not_matched_insert_all().execute()
            written = metrics["num_target_rows_inserted"]
        else:
            expected = int(change.row.revision) - 1
            metrics = merge.when_matched_update_all(predicate=f"t.revision = {expected}").execute()
            written = metrics["num_target_rows_updated"]
        if written == 1:  # each change rewrites a small file
            maintain_table(table, every=MAINTENANCE_EVERY)
        return written == 1

    # -- open markers

    def _marker_folder(self, key: str) -> str:
        return f"{self.markers_path}/{quote(key, safe='')}"

    def _write_marker(self, row: Incident) -> None:
        if row.status == OPEN:
            path = f"{self._marker_folder(row.incident_key)}/{row.episode}.json"
            self.lake.write_bytes(path, json.dumps({"episode": row.episode}).encode())

    def _remove_marker(self, row: Incident) -> None:
        self.lake.delete_files([f"{self._marker_folder(row.incident_key)}/{row.episode}.json"])

    def _remove_stale_markers(self, key: str) -> None:
        current = self.current(key)
        keep = f"{current.episode}.json" if current is not None and current.status == OPEN else None
        stale = [path for path in self.lake.list_files(self._marker_folder(key)) if not path.endswith(f"/{keep}")]
        self.lake.delete_files(stale)
