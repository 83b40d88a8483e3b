"""The ``airbyte`` driver's operator: sync a connection on an Airbyte server, land its output."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.airbyte.operators.airbyte import AirbyteTriggerSyncOperator

from sluice.core.batch import BATCH_ID_TEMPLATE


class AirbyteSyncOperator(AirbyteTriggerSyncOperator):
    """Run one batch of an ``airbyte`` source: sync its connection, then land what it wrote.

    The provider's operator, with what a scheduled batch needs (``docs/decisions.md``):
    a retry or rerun never starts a second sync of the connection (it waits for the
    running job, or collects the batch's succeeded job again); ``queued`` and every other
    status that has not ended means "wait"; a timeout, an ``execution_timeout`` or a
    kill cancels the job; API errors are retried (:class:`~sluice.ingest.airbyte.hook.AirbyteServerHook`).
    When the job succeeded, the files its S3 destination wrote in its succeeded attempt
    are checked against the job's record count (that attempt's) and published as the
    batch's landing, for the bronze commit that follows; for a connection that writes the
    warehouse, its tables are checked instead.

    :param source: name of the source declaration (``include/sources/<source>.yml``)
    :param batch: batch id of the interval to land (templated; the run's interval start)
    :param connection_id: the Airbyte connection (default: the declaration's)
    :param airbyte_conn_id: the Airflow connection of the Airbyte API (default: the declaration's)
    :param deferrable: wait in the triggerer (default) instead of on a worker
    :param wait_seconds: seconds between two looks at the job
    :param timeout: seconds to wait for the job before cancelling it
    """

    template_fields: Sequence[str] = ("source", "batch", "connection_id", "airbyte_conn_id")
    ui_color = "#c9e4f5"

    def __init__(
        self,
        *,
        source: str,
        batch: str = BATCH_ID_TEMPLATE,
        connection_id: str | None = None,
        airbyte_conn_id: str | None = None,
        deferrable: bool = True,
        wait_seconds: float = 30,
        timeout: float = 5 * 3600,
        **kwargs: Any,
    ) -> None:
        if connection_id is None or airbyte_conn_id is None:
            from sluice.core.sources import load_source

            declared = load_source(source).airbyte
            if declared is None:
                raise ValueError(f"source {source} does not use the airbyte driver")
            connection_id = connection_id or declared.connection_id
            airbyte_conn_id = airbyte_conn_id or declared.conn_id
        super().__init__(
            connection_id=connection_id,
            airbyte_conn_id=airbyte_conn_id,
            deferrable=deferrable,
            wait_seconds=wait_seconds,
            timeout=timeout,
            **kwargs,
        )
        self.source = source
        self.batch = batch
        self.job_id: int | None = None

    # --- Airflow's entry points ---------------------------------------------------------

    def execute(self, context: Any) -> dict[str, Any]:
        from sluice.ingest.airbyte.hook import TERMINAL_STATUSES
        from sluice.ingest.airbyte.triggers import AirbyteJobTrigger

        hook = self._hook()
        job = self._job(hook)
        if job["status"] not in TERMINAL_STATUSES:
            wait = self.timeout
            if self.execution_timeout is not None:
                wait = min(wait, self.execution_timeout.total_seconds())
            if self.deferrable:
                self.defer(
                    trigger=AirbyteJobTrigger(
                        job_id=job["jobId"],
                        conn_id=self.airbyte_conn_id,
                        end_time=time.time() + wait,
                        poll_interval=self.wait_seconds,
                    ),
                    method_name="execute_complete",
                    # the trigger's own timeout event comes first, so the job is cancelled
                    timeout=timedelta(seconds=wait + 2 * self.wait_seconds + 60),
                )
            job = self._wait(hook, job, wait)
        return self._finish(hook, job)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        from sluice.ingest.airbyte.hook import AirbyteError

        event = event or {}
        self.job_id = event.get("job_id")
        hook = self._hook()
        if event.get("status") == "timeout":
            self._cancel(hook)
            raise AirbyteError(f"{self._job_name()} did not end within {self.timeout:.0f} s; it was cancelled")
        if event.get("status") == "error":
            raise AirbyteError(f"waiting for {self._job_name()}: {event.get('message')}")
        return self._finish(hook, event["job"])

    def on_kill(self) -> None:
        """The task was killed (stopped in the UI, or its ``execution_timeout``): cancel the job."""
        if self.job_id is not None:
            self._cancel(self._hook())

    # --- the steps ----------------------------------------------------------------------

    def _hook(self) -> Any:
        from sluice.ingest.airbyte.hook import AirbyteServerHook

        return AirbyteServerHook(airbyte_conn_id=self.airbyte_conn_id)

    def _job_name(self) -> str:
        return (
            f"Airbyte job {self.job_id} of connection {self.connection_id} (source {self.source}, batch {self.batch})"
        )

    def _source(self) -> Any:
        from sluice.core.sources import load_source

        return load_source(self.source)

    def _lake(self) -> Any:
        """The lake, opened (and checked) once per try."""
        from sluice.lake.storage import open_lake

        if getattr(self, "_opened_lake", None) is None:
            self._opened_lake = open_lake()
        return self._opened_lake

    def _job(self, hook: Any) -> dict[str, Any]:
        """The batch's job: the recorded one when it still runs or succeeded, else a new sync
        (or the connection's running one). Checks the connection's destination first."""
        from sluice.ingest.airbyte.hook import TERMINAL_STATUSES
        from sluice.ingest.airbyte.landing import record_job, recorded_job

        self._destination(hook)
        lake = self._lake()
        record = recorded_job(lake, self.source, self.batch)
        if record and record["connection_id"] == self.connection_id:
            job = hook.get_job(record["job_id"])
            if job["status"] == "succeeded" or job["status"] not in TERMINAL_STATUSES:
                self.job_id = job["jobId"]
                self.log.info("%s is %s: taking it up again", self._job_name(), job["status"])
                return job
        job, started = hook.start_sync(self.connection_id)
        self.job_id = job["jobId"]
        record_job(lake, self.source, self.batch, job)
        self.log.info("%s %s", self._job_name(), "started" if started else "was already running: waiting for it")
        return job

    def _destination(self, hook: Any) -> Any:
        """Per stream, the lake folder the connection writes (or the warehouse schema);
        checked once per try."""
        from sluice.ingest.airbyte.destination import check_warehouse_destination, lake_folders

        if getattr(self, "_checked_destination", None) is not None:
            return self._checked_destination
        source = self._source()
        connection = hook.get_connection_info(self.connection_id)
        destination = hook.get_destination_info(connection["destinationId"])
        if source.writes_warehouse:
            self._checked_destination = check_warehouse_destination(source, connection, destination)
        else:
            self._checked_destination = lake_folders(source, connection, destination, self._lake())
        return self._checked_destination

    def _wait(self, hook: Any, job: dict[str, Any], wait: float) -> dict[str, Any]:
        """Wait on this worker; a timeout, or anything that stops the wait, cancels the job."""
        from sluice.ingest.airbyte.hook import TERMINAL_STATUSES, AirbyteError

        deadline = time.monotonic() + wait
        try:
            while job["status"] not in TERMINAL_STATUSES:
                if time.monotonic() >= deadline:
                    raise AirbyteError(f"{self._job_name()} did not end within {wait:.0f} s; it was cancelled")
                self.log.info("%s is %s", self._job_name(), job["status"])
                time.sleep(max(0.0, min(self.wait_seconds, deadline - time.monotonic())))
                job = hook.get_job(job["jobId"])
        except BaseException:  # a timeout, an execution_timeout, a kill: the job must not go on
            self._cancel(hook)
            raise
        return job

    def _cancel(self, hook: Any) -> None:
        try:
            cancelled = hook.cancel(self.job_id)
        except Exception:
            self.log.exception("could not cancel %s", self._job_name())
            return
        self.log.info("%s %s", self._job_name(), "cancelled" if cancelled else "had already ended")

    def _finish(self, hook: Any, job: dict[str, Any]) -> dict[str, Any]:
        from sluice.ingest.airbyte.hook import AirbyteError
        from sluice.ingest.airbyte.landing import collect_job

        self.job_id = job["jobId"]
        if job["status"] != "succeeded":
            raise AirbyteError(
                f"{self._job_name()} ended {job['status']} after {job.get('duration') or 'an unknown time'}"
                f" ({job.get('rowsSynced', 0)} rows synced): Airbyte's job history of the connection says why"
            )
        where = self._destination(hook)
        if self._source().writes_warehouse:
            from sluice.ingest.airbyte.warehouse import check_job_tables

            counts = check_job_tables(self._source(), where, job, self.batch)
            self.log.info("%s: %s", self._job_name(), counts)
            return {"airbyte_job_id": self.job_id, "rows": counts}
        attempts = hook.job_attempts(self.job_id)
        if attempts is None:
            self.log.warning(
                "%s: Airbyte's configuration API does not answer here, so its attempts are unknown: every file"
                " of the job is taken (a retried job's failed attempts then fail the count check)",
                self._job_name(),
            )
        manifests = collect_job(self._lake(), self.source, self.batch, job, where, attempts)
        for stream, manifest in manifests.items():
            self.log.info(
                "%s.%s batch %s: Airbyte job %s landed %d rows in %d file(s)",
                self.source,
                stream,
                self.batch,
                self.job_id,
                manifest["landed"],
                len(manifest["files"]),
            )
        return {
            stream: {key: manifest[key] for key in ("read", "landed", "quarantined")}
            for stream, manifest in manifests.items()
        }
