"""The transform's wait for a source's batch ends in the triggerer once the batch is
published, for the run's own logical date, and hands anything else to a worker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

LOGICAL_DATE = datetime(2026, 11, 20, 6, tzinfo=UTC)


def first_event(monkeypatch, counts: dict[str, int], task_instance=None):
    """The trigger's first event when the source's ``metrics`` task has ``counts`` task
    instances per state set; and the logical dates it asked about."""
    from sluice.transform.sensors import PublishedTrigger

    asked: list = []

    async def count(self, states):
        asked.append(list(self.logical_dates))
        return sum(counts.get(state, 0) for state in states or ())

    monkeypatch.setattr(PublishedTrigger, "_get_count_af_3", count)
    trigger = PublishedTrigger(
        external_dag_id="ingest_faker",
        external_task_ids=["metrics"],
        allowed_states=["success"],
        failed_states=["failed"],
        skipped_states=[],
        poke_interval=0.01,
        logical_dates=None,
    )
    trigger.task_instance = task_instance or SimpleNamespace(
        task_id="wait_for_faker", get_template_context=lambda: {"logical_date": LOGICAL_DATE}
    )

    async def first():
        async for event in trigger.run():
            return event

    return asyncio.run(first()), asked


def test_a_published_batch_ends_the_wait_in_the_triggerer(monkeypatch):
    from airflow.triggers.base import TaskSuccessEvent

    event, asked = first_event(monkeypatch, {"success": 1})
    assert isinstance(event, TaskSuccessEvent)
    assert asked and all(dates == [LOGICAL_DATE] for dates in asked)  # this run's interval only


def test_a_failed_source_resumes_the_sensor_on_a_worker(monkeypatch):
    from airflow.triggers.base import BaseTaskEndEvent

    event, _ = first_event(monkeypatch, {"failed": 1})
    assert not isinstance(event, BaseTaskEndEvent) and event.payload == {"status": "failed"}


def test_without_the_runs_logical_date_it_refuses_to_wait(monkeypatch):
    # Airflow's trigger with no dates counts 0 of 0 and succeeds at once
    with pytest.raises(ValueError, match="logical date"):
        first_event(monkeypatch, {"success": 0}, task_instance=SimpleNamespace(task_id="x", get_template_context=dict))


def test_the_sensor_starts_in_the_triggerer_waiting_as_long_as_it_is_told():
    from sluice.transform.sensors import SourcePublishedSensor

    sensor = SourcePublishedSensor(
        task_id="wait_for_faker", external_dag_id="ingest_faker", external_task_id="metrics", timeout=600
    )
    assert sensor.start_from_trigger
    assert sensor.start_trigger_args.trigger_cls == "sluice.transform.sensors.PublishedTrigger"
    assert sensor.start_trigger_args.timeout.total_seconds() == 600
    assert callable(getattr(sensor, sensor.start_trigger_args.next_method))
