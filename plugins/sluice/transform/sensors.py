"""The transform's wait for each source's published batch, started in the triggerer.

Airflow's ``ExternalTaskSensor`` waits on a worker, or defers from one and resumes on one:
two task start-ups an interval on the transform's critical path, each costing more than the
wait. Where tasks may wait in the triggerer
(:data:`~sluice.core.compat.WAITS_IN_THE_TRIGGERER`), this one starts there, and ends there
once the batch is published; any other outcome (the source failed, a timeout) resumes it
on a worker, where the sensor reports it as Airflow's does.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.providers.standard.triggers.external_task import WorkflowTrigger

from sluice.core.compat import WAITS_IN_THE_TRIGGERER


class PublishedTrigger(WorkflowTrigger):
    """Airflow's trigger for an external task, for the run's own logical date, ending the
    waiting task when the task it waits for succeeded."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{__name__}.{type(self).__name__}", super().serialize()[1]

    async def run(self) -> Any:
        from airflow.triggers.base import TaskSuccessEvent

        if not self.logical_dates and self.task_instance is not None:
            date = self.task_instance.get_template_context().get("logical_date")
            self.logical_dates = [date] if date else []
        if not self.logical_dates:
            raise ValueError(f"{type(self).__name__} needs the run's logical date to wait for {self.external_dag_id}")
        async for event in super().run():
            if event.payload.get("status") == "success":
                self.log.info("%s published the batch (%s)", self.external_dag_id, ", ".join(self.external_task_ids))
                yield TaskSuccessEvent()
            else:
                yield event
            return


class SourcePublishedSensor(ExternalTaskSensor):
    """Wait for ``external_task_id`` of a source's ingestion at this run's logical date."""

    def __init__(self, **kwargs: Any) -> None:
        # in the triggerer, looking every 2 s costs nothing (a backfill runs the transform
        # right behind the ingestion; dag.test runs the trigger in-process); on a worker,
        # each look is a task start-up
        kwargs.setdefault("deferrable", WAITS_IN_THE_TRIGGERER)
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", 2 if WAITS_IN_THE_TRIGGERER else 10)
        super().__init__(**kwargs)
        if not WAITS_IN_THE_TRIGGERER:
            return
        from airflow.triggers.base import StartTriggerArgs

        self.start_from_trigger = True
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=f"{__name__}.{PublishedTrigger.__name__}",
            trigger_kwargs={
                "external_dag_id": self.external_dag_id,
                "external_task_ids": list(self.external_task_ids),
                "allowed_states": list(self.allowed_states),
                "failed_states": list(self.failed_states),
                "skipped_states": list(self.skipped_states),
                "poke_interval": self.poke_interval,
                "soft_fail": self.soft_fail,
                "logical_dates": None,
            },
            next_method="execute_complete",
            next_kwargs=None,
            timeout=timedelta(seconds=self.timeout),
        )
