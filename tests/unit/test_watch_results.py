"""The check-results and incident tables stay a few files however many commits they take:
every so many versions their small files are compacted, and no row is lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from sluice.alerting import incidents
from sluice.alerting.incidents import OPEN, RESOLVED, IncidentStore
from sluice.alerting.messages import Event
from sluice.alerting.routing import Route
from sluice.checks import metrics, results
from sluice.lake.storage import maintain_table

EVERY = 10
START = datetime(2026, 11, 20, tzinfo=UTC)


def check_run(run: int) -> list[results.CheckResult]:
    """One check run's results: a row count of each of three tables, measured at ``run`` minutes."""
    return [
        results.CheckResult(
            checked_at=START + timedelta(minutes=run),
            dag_id="ingest_shop",
            batch=f"run{run}",
            source="shop",
            table_name=f"bronze.shop__{stream}",
            check="volume",
            metric="row_count",
            value=float(run * 100 + index),
            threshold=None,
            status=results.PASS,
            blocking=False,
            detail=f"{run * 100 + index} rows",
        )
        for index, stream in enumerate(("orders", "users", "items"))
    ]


def newest_of(recorded: list[results.CheckResult]) -> list[results.CheckResult]:
    """What ``latest()`` must answer, worked out from what was recorded."""
    newest: dict[tuple[str, str, str], results.CheckResult] = {}
    for result in recorded:
        key = (result.table_name, result.check, result.metric)
        if key not in newest or result.checked_at > newest[key].checked_at:
            newest[key] = result
    return sorted(newest.values(), key=lambda result: result.checked_at, reverse=True)


def in_order(recorded) -> list[results.CheckResult]:
    return sorted(recorded, key=lambda result: (result.checked_at, result.table_name))


def active_files(table) -> int:
    return len(table.file_uris())


def test_check_results_are_compacted_every_so_many_versions_and_keep_every_row(lake, monkeypatch):
    monkeypatch.setattr(results, "MAINTENANCE_EVERY", EVERY)
    recorded: list[results.CheckResult] = []
    for run in range(EVERY):  # versions 0 to 9: one file each
        recorded += check_run(run)
        results.record(lake, check_run(run))
    table = lake.delta_table(results.table_path(lake))
    assert (table.version(), active_files(table)) == (EVERY - 1, EVERY)
    assert results.latest(lake) == newest_of(recorded)

    recorded += check_run(EVERY)
    results.record(lake, check_run(EVERY))  # version 10: its writer compacts
    table = lake.delta_table(results.table_path(lake))
    assert active_files(table) == 1
    assert table.history(1)[0]["operation"] == "OPTIMIZE"
    assert results.latest(lake) == newest_of(recorded)

    for run in range(EVERY + 1, 2 * EVERY + 5):  # one more maintenance point
        recorded += check_run(run)
        results.record(lake, check_run(run))
    table = lake.delta_table(results.table_path(lake))
    assert active_files(table) < EVERY  # 25 check runs, not 25 files
    rows = table.to_pyarrow_table().to_pylist()
    assert len(rows) == len(recorded) == 3 * (2 * EVERY + 5)
    assert in_order(results.CheckResult(**row) for row in rows) == in_order(recorded)
    by_batch = {(row["batch"], row["table_name"]): row["value"] for row in rows}
    assert by_batch[("run0", "bronze.shop__orders")] == 0.0
    assert by_batch[("run17", "bronze.shop__users")] == 1701.0
    assert by_batch[(f"run{2 * EVERY + 4}", "bronze.shop__items")] == (2 * EVERY + 4) * 100 + 2
    assert results.latest(lake) == newest_of(recorded)
    # the volume check's filtered read of the compacted files
    history = metrics.volume_history(lake, ["bronze.shop__users"])["bronze.shop__users"]
    assert len(history) == 2 * EVERY + 5 and history["run17"] == 1701.0


def test_the_incident_table_is_compacted_and_keeps_every_episode(local_lake, monkeypatch):
    monkeypatch.setattr(incidents, "MAINTENANCE_EVERY", EVERY)
    store = IncidentStore(local_lake)
    keys = [f"ingest_shop/stream{index}.load" for index in range(EVERY + 5)]
    for key in keys:  # an opening adds a small file, a resolution rewrites one
        store.occurred(key, Event(title="Task failed", what=f"{key} broke"), Route)
    for key in keys[:-3]:  # the first rewrites the compacted file; the next reads must still find theirs
        store.resolve(key)
    table = local_lake.delta_table(store.table_path)
    assert [commit["operation"] for commit in table.history()].count("OPTIMIZE") >= 2
    assert active_files(table) < EVERY  # 15 incidents, not 15 files
    assert table.to_pyarrow_table().num_rows == len(keys)
    for key in keys:
        assert store.current(key).status == (OPEN if key in keys[-3:] else RESOLVED)
    assert sorted(incident.incident_key for incident in store.open_incidents()) == sorted(keys[-3:])


def test_maintenance_runs_only_at_multiples_and_refuses_a_bad_interval(local_lake):
    path = local_lake.path("ops", "demo")
    for run in range(4):
        table = local_lake.append_to_table(path, pa.table({"run": [run]}))
        assert maintain_table(table, every=3) == (run == 3)  # version 0, the table's creation, never
    assert active_files(table) == 1
    with pytest.raises(ValueError, match="every 0 versions"):
        maintain_table(table, every=0)
