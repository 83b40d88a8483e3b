"""Land an Airbyte job's output: exactly the files the job wrote, checked and published.

The job is recorded per batch (``state/<source>/airbyte/batch=<batch>.json``) as soon as
it is started or found running, so a retried task waits for the same job, and a rerun
of a batch whose job succeeded collects that job's files again instead of syncing anew.

A file belongs to a job by the ``_airbyte_meta.sync_id`` Airbyte writes in every record
(read from the Parquet footer's statistics). Only files changed since shortly before
the job started are looked at, so the cost follows the batch, not the folder's history.
A job Airbyte retried has files of each attempt, all with the job's sync id: a failed
attempt's part files stay, and the next attempt writes its records again. Only the
succeeded attempt's files are landed: those whose records were all extracted after
the attempts before it ended (``_airbyte_extracted_at``, from the footer too; Airbyte
reports attempt times in whole seconds, so "after" means from the second after the
last earlier attempt ended). A file with records from both sides is refused. The
attempts come from Airbyte's configuration API; where it is not served, every file of
the job is landed. The files' rows must add up to the job's ``rowsSynced``, which Airbyte's
public API takes from the last (the succeeded) attempt's committed records, so files of
earlier attempts that were taken fail the check; then one landing manifest per stream is published
(``landing/<source>/<stream>/batch=<batch>.json``), the same a ``local`` landing writes,
and the shared path (bronze commit, warehouse load) follows. Files that fail a check are
left where they are, uncommitted, and the reason is written to ``quarantine/<source>/_airbyte/batch=<batch>.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.parquet as pq

from sluice.ingest.landing import LandingError, write_manifest
from sluice.lake.storage import Lake

SYNC_ID_COLUMN = "_airbyte_meta.sync_id"
EXTRACTED_AT_COLUMN = "_airbyte_extracted_at"
#: how much earlier than the job's start a file may look (clocks of Airbyte and S3 differ)
CLOCK_MARGIN = timedelta(minutes=15)


def job_record_path(lake: Lake, source: str, batch: str) -> str:
    return lake.path("state", source, "airbyte", f"batch={batch}.json")


def recorded_job(lake: Lake, source: str, batch: str) -> dict[str, Any] | None:
    """The job recorded for the batch: job_id, connection_id, start_time; None if none."""
    return lake.read_json(job_record_path(lake, source, batch))


def record_job(lake: Lake, source: str, batch: str, job: Mapping[str, Any]) -> None:
    record = {"job_id": int(job["jobId"]), "connection_id": job["connectionId"], "start_time": job["startTime"]}
    lake.write_bytes(job_record_path(lake, source, batch), json.dumps(record, indent=2).encode())


def _rejected_path(lake: Lake, source: str, batch: str) -> str:
    return lake.path("quarantine", source, "_airbyte", f"batch={batch}.json")


def _reject(lake: Lake, source: str, batch: str, job_id: int, reason: str, files: list[str]) -> LandingError:
    kept = [lake.uri(path) for path in files]
    document = {"source": source, "batch": batch, "airbyte_job_id": job_id, "reason": reason, "files": kept}
    lake.write_bytes(_rejected_path(lake, source, batch), json.dumps(document, indent=2).encode())
    listed = "".join(f"\n  {uri}" for uri in kept) or " (none)"
    return LandingError(
        f"Airbyte job {job_id} of source {source}, batch {batch}: {reason}. Nothing was committed; the job's files"
        f" are kept for inspection:{listed}\n(reason saved in {lake.uri(_rejected_path(lake, source, batch))})"
    )


def _rejected_elsewhere(lake: Lake, source: str, job_id: int) -> set[str]:
    """Files an earlier job was rejected for: kept for inspection, never another job's."""
    folder = lake.path("quarantine", source, "_airbyte")
    claimed: set[str] = set()
    for path in lake.list_files(folder):
        document = lake.read_json(path) or {}
        if document.get("airbyte_job_id") != job_id:
            claimed.update(uri.split("://", 1)[-1] for uri in document.get("files", []))
    return claimed


def _recent_files(lake: Lake, folder: str, since: datetime) -> list[Any]:
    from pyarrow.fs import FileSelector, FileType

    infos = lake.fs.get_file_info(FileSelector(folder, allow_not_found=True, recursive=True))
    floor = (since - CLOCK_MARGIN).timestamp()
    return sorted(
        (
            info
            for info in infos
            if info.type == FileType.File and info.mtime is not None and info.mtime.timestamp() >= floor
        ),
        key=lambda info: info.path,
    )


def _column_range(metadata: pq.FileMetaData, lake: Lake, path: str, column: str) -> tuple[Any, Any] | None:
    """The smallest and largest value of a (nested) column: from the footer's statistics,
    else read from the column; None if the file has no such column (not Airbyte's)."""
    import pyarrow.compute as pc

    low = high = None
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        chunk = next(
            (row_group.column(i) for i in range(row_group.num_columns) if row_group.column(i).path_in_schema == column),
            None,
        )
        if chunk is None:
            return None
        stats = chunk.statistics
        if stats is None or not stats.has_min_max:
            top, _, field = column.partition(".")
            with lake.fs.open_input_file(path) as file:
                values = pq.read_table(file, columns=[top]).column(0).combine_chunks()
            values = values.field(field) if field else values
            found = pc.min_max(values).as_py()
            return (found["min"], found["max"]) if found["min"] is not None else None
        low = stats.min if low is None else min(low, stats.min)
        high = stats.max if high is None else max(high, stats.max)
    return (low, high) if low is not None else None


def _utc_range(found: tuple[Any, Any] | None) -> tuple[datetime, datetime] | None:
    """Timestamps as UTC datetimes (a footer's statistics may leave out the zone)."""
    if found is None or not all(isinstance(value, datetime) for value in found):
        return None
    return tuple(value if value.tzinfo else value.replace(tzinfo=UTC) for value in found)  # type: ignore[return-value]


def succeeded_attempt(attempts: list[Mapping[str, Any]] | None) -> tuple[datetime, int] | None:
    """For a job's attempts (oldest first): (the earliest time the succeeded attempt's
    records can have been extracted, its id); None if unknown."""
    succeeded = [a for a in attempts or [] if a.get("status") == "succeeded"]
    if not succeeded:
        return None
    last = succeeded[-1]
    earlier = [int(a["endedAt"] or a["createdAt"]) + 1 for a in attempts if a.get("id", 0) < last.get("id", 0)]
    return datetime.fromtimestamp(max([int(last["createdAt"]), *earlier]), UTC), int(last.get("id", 0))


def collect_job(
    lake: Lake,
    source: str,
    batch: str,
    job: Mapping[str, Any],
    folders: Mapping[str, str],
    attempts: list[Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Publish the files of the succeeded ``job`` as the batch's landing of each stream.

    :param job: the job as Airbyte's API answers it (jobId, startTime, rowsSynced, …)
    :param folders: stream -> folder the connection's S3 destination writes it to
    :param attempts: the job's attempts (:meth:`~sluice.ingest.airbyte.hook.AirbyteServerHook.job_attempts`),
        None if Airbyte does not say
    :returns: per stream, the manifest published
    :raises LandingError: a file that is not Parquet, or counts that disagree with the job
    """
    job_id = int(job["jobId"])
    started = datetime.fromisoformat(str(job["startTime"]).replace("Z", "+00:00"))
    attempt = succeeded_attempt(attempts)
    since = attempt[0] if attempt else None
    found: dict[str, list[tuple[str, int, int]]] = {}
    unreadable: list[str] = []
    earlier: dict[str, list[str]] = {}
    claimed = _rejected_elsewhere(lake, source, job_id)
    for stream, folder in folders.items():
        found[stream], earlier[stream] = [], []
        for info in _recent_files(lake, folder, started):
            if info.path in claimed:
                continue
            try:
                with lake.fs.open_input_file(info.path) as file:
                    metadata = pq.read_metadata(file)
            except (OSError, ValueError):
                unreadable.append(info.path)
                continue
            ids = _column_range(metadata, lake, info.path, SYNC_ID_COLUMN)
            if ids is None or not ids[0] <= job_id <= ids[1]:
                continue  # another job's, or not Airbyte's
            if ids != (job_id, job_id):
                unreadable.append(info.path)  # records of several jobs in one file
                continue
            extracted = _utc_range(_column_range(metadata, lake, info.path, EXTRACTED_AT_COLUMN)) if since else None
            if since and extracted and extracted[1] < since:
                earlier[stream].append(info.path)  # an earlier attempt's: its records are written again
            elif since and (extracted is None or extracted[0] < since):
                unreadable.append(info.path)  # records of two attempts in one file
            else:
                found[stream].append((info.path, metadata.num_rows, info.size))
    files = [path for entries in found.values() for path, _, _ in entries]
    if unreadable:
        reason = (
            f"{len(unreadable)} file(s) written since the job started are not Parquet files of this job"
            f"{' and its succeeded attempt' if since else ''} alone"
        )
        raise _reject(lake, source, batch, job_id, reason, unreadable + files)
    rows = sum(count for entries in found.values() for _, count, _ in entries)
    expected = job.get("rowsSynced")
    if expected is None or rows != int(expected):
        said = f" by attempt {attempt[1]}" if attempt else ""
        raise _reject(
            lake,
            source,
            batch,
            job_id,
            f"its files hold {rows} record(s) but Airbyte reports {expected} synced{said}",
            files,
        )
    manifests = {}
    for stream, entries in found.items():
        manifests[stream] = {
            "source": source,
            "stream": stream,
            "batch": batch,
            "attempt": f"airbyte-job-{job_id}",
            "read": sum(count for _, count, _ in entries),
            "landed": sum(count for _, count, _ in entries),
            "quarantined": 0,
            "suppressed": 0,
            "bytes": sum(size for _, _, size in entries),
            "files": [lake.relative(path) for path, _, _ in entries],
            "airbyte_job_id": job_id,
        }
        if attempt:  # the earlier attempts' files stay where they are, never committed
            manifests[stream]["airbyte_attempt"] = attempt[1]
            manifests[stream]["airbyte_earlier_attempt_files"] = [lake.relative(path) for path in earlier[stream]]
    for manifest in manifests.values():
        write_manifest(lake, manifest)
    if lake.exists(_rejected_path(lake, source, batch)):
        lake.delete_files([_rejected_path(lake, source, batch)])
    return manifests


def describe(manifests: Mapping[str, Mapping[str, Any]]) -> str:
    return ", ".join(f"{stream} {m['landed']:,} rows in {len(m['files'])} file(s)" for stream, m in manifests.items())
