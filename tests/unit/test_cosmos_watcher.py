"""What the watcher adapter (sluice.transform.cosmos_watcher) takes from Cosmos' internals is
still there, with the same shape: a Cosmos upgrade that changes it fails here, not in a batch."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

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
