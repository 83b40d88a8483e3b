"""What the watcher adapter (sluice.transform.cosmos_watcher) takes from Cosmos' internals is
still there, with the same shape: a Cosmos upgrade that changes it fails here, not in a batch."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pinned(package: str) -> str:
    match = re.search(rf"^{package}==([^ \\]+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert match, f"{package} is not pinned in requirements.txt"
    return match.group(1)


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_the_adapter_is_for_the_pinned_cosmos():
    import cosmos

    assert cosmos.__version__ == pinned("astronomer-cosmos"), (
        "Cosmos changed: check every internal sluice.transform.cosmos_watcher uses, then this test"
    )


def test_the_internals_the_adapter_uses_keep_their_shape():
    from cosmos import settings
    from cosmos.operators._watcher import aggregation, state, xcom
    from cosmos.operators.watcher import DbtConsumerWatcherSensor, DbtProducerWatcherOperator

    assert isinstance(settings.enable_watcher_reliable_retry, bool)
    assert parameters(aggregation.get_tests_status_xcom_key) == ["model_uid"]
    assert parameters(state.safe_xcom_push) == ["task_instance", "key", "value"]
    assert parameters(state.is_dbt_node_status_success) == ["status"]
    assert parameters(xcom._backup_xcom_to_variable) == ["context"]
    assert parameters(DbtConsumerWatcherSensor._handle_retry) == [
        "self",
        "try_number",
        "producer_task_state",
        "context",
    ]
    assert parameters(DbtConsumerWatcherSensor._get_node_status) == ["self", "ti", "context"]
    assert parameters(DbtConsumerWatcherSensor.poke) == ["self", "context"]
    assert parameters(state.is_dbt_node_status_skipped) == ["status"]
    assert parameters(state.build_producer_state_fetcher) == [
        "airflow_version",
        "dag_id",
        "run_id",
        "producer_task_id",
        "logger",
    ]
    producer = inspect.getsource(DbtProducerWatcherOperator)
    for attribute in ("tests_per_model", "enable_watcher_reliable_retry"):
        assert attribute in producer, f"the producer no longer uses {attribute}"


def test_no_other_module_reaches_into_cosmos_or_airflow_internals():
    users = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "plugins").rglob("*.py")
        for internal in ("cosmos.operators._watcher", "airflow.sdk._shared", "__class__ =")
        if internal in path.read_text()
    }
    assert users == {"plugins/sluice/transform/cosmos_watcher.py"}


def report_outcome(monkeypatch, node_status: str | None, producer_state: str) -> tuple[object, list[str]]:
    """What a model task's trigger yields when the build left ``node_status`` for the node
    and the build task is ``producer_state``; and which run's XComs it read."""
    import asyncio
    from types import SimpleNamespace

    from sluice.transform.cosmos_watcher import ReportTrigger

    read: list[str] = []

    async def xcom(self, key):
        read.append(self.run_id)
        if key.endswith("_status") and node_status is not None:
            return {"status": node_status, "outlet_uris": []}
        return None

    async def producer(self):
        return producer_state

    monkeypatch.setattr(ReportTrigger, "get_xcom_val", xcom)
    monkeypatch.setattr(ReportTrigger, "_get_producer_task_status", producer)
    trigger = ReportTrigger(
        model_unique_id="model.sluice.customers",
        producer_task_id="dbt.dbt_producer_watcher",
        dag_id="transform",
        run_id="",
        map_index=None,
        poke_interval=0.01,
    )
    trigger.task_instance = SimpleNamespace(run_id="backfill__2026-11-20T00:00:00+00:00", task_id="dbt.customers.run")

    async def first_event():
        async for event in trigger.run():
            return event

    return asyncio.run(first_event()), read


def test_a_model_task_ends_in_the_triggerer_when_dbt_built_its_node(monkeypatch):
    from airflow.triggers.base import TaskSuccessEvent

    event, read = report_outcome(monkeypatch, "success", "success")
    assert isinstance(event, TaskSuccessEvent)
    assert set(read) == {"backfill__2026-11-20T00:00:00+00:00"}  # its own run's build


def test_a_model_task_ends_skipped_in_the_triggerer_when_dbt_skipped_its_node(monkeypatch):
    from airflow.triggers.base import TaskSkippedEvent

    event, _ = report_outcome(monkeypatch, "skipped", "success")
    assert isinstance(event, TaskSkippedEvent)


@pytest.mark.parametrize(
    ("node_status", "producer_state", "why"),
    [
        ("failed", "success", "the node failed: its task decides between skipping and retrying"),
        (None, "success", "not built (left out as stale): its task skips it, naming the late table"),
        (None, "failed", "the build failed before reaching the node"),
    ],
)
def test_any_other_outcome_resumes_the_model_task_on_a_worker(monkeypatch, node_status, producer_state, why):
    from airflow.triggers.base import BaseTaskEndEvent, TriggerEvent

    event, _ = report_outcome(monkeypatch, node_status, producer_state)
    assert isinstance(event, TriggerEvent) and not isinstance(event, BaseTaskEndEvent), why
    assert event.payload["status"] != "success" or event.payload.get("reason"), why
