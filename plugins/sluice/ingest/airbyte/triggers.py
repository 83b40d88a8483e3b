"""Wait for an Airbyte job in the triggerer, and cancel it when the task is killed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from sluice.ingest.airbyte.hook import TERMINAL_STATUSES


class AirbyteJobTrigger(BaseTrigger):
    """Poll an Airbyte job until it ends, or until ``end_time``.

    Unlike the provider's trigger, every status that has not ended (``pending``,
    ``queued``, ``running``, ``incomplete``) means "wait", passing ``end_time`` yields a
    ``timeout`` event (the operator then cancels the job), and killing the task while it
    waits (marking it failed or clearing it in the UI) cancels the job. The API calls are
    the blocking hook's, with its retries, run in a thread so the triggerer's loop
    never waits on the network.

    :param job_id: the Airbyte job
    :param conn_id: the Airflow connection of the Airbyte API
    :param end_time: when to stop waiting (seconds since the epoch)
    :param poll_interval: seconds between two looks at the job
    """

    def __init__(self, job_id: int, conn_id: str, end_time: float, poll_interval: float = 30) -> None:
        super().__init__()
        self.job_id = int(job_id)
        self.conn_id = conn_id
        self.end_time = end_time
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "conn_id": self.conn_id,
                "end_time": self.end_time,
                "poll_interval": self.poll_interval,
            },
        )

    def _hook(self) -> Any:
        from sluice.ingest.airbyte.hook import AirbyteServerHook

        return AirbyteServerHook(airbyte_conn_id=self.conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            hook = await asyncio.to_thread(self._hook)
            while True:
                job = await asyncio.to_thread(hook.get_job, self.job_id)
                if job["status"] in TERMINAL_STATUSES:
                    yield TriggerEvent({"status": job["status"], "job": job, "job_id": self.job_id})
                    return
                if time.time() >= self.end_time:
                    yield TriggerEvent({"status": "timeout", "job": job, "job_id": self.job_id})
                    return
                self.log.info("Airbyte job %s is %s", self.job_id, job["status"])
                await asyncio.sleep(max(0.0, min(self.poll_interval, self.end_time - time.time())))
        except Exception as error:  # an answer the operator reports with the job id
            yield TriggerEvent({"status": "error", "message": str(error), "job_id": self.job_id})

    async def on_kill(self) -> None:
        """The task was killed while waiting (Airflow 3.3+): cancel the job."""
        hook = await asyncio.to_thread(self._hook)
        cancelled = await asyncio.to_thread(hook.cancel, self.job_id)
        self.log.info("Airbyte job %s %s", self.job_id, "cancelled" if cancelled else "had already ended")
