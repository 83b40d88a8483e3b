"""Bronze Delta commits and DuckDB loads: replace exactly one batch, atomically."""

from __future__ import annotations

import duckdb
import pytest

from sluice.core.sources import StreamConfig
from sluice.ingest.commit import commit_batch
from sluice.ingest.landing import BatchLanding, LandingError
from sluice.ingest.schema import stream_schema
from sluice.lake.bronze import bronze_table_path
from sluice.warehouse.duckdb_load import load_batch

STREAM = StreamConfig("users", record_key="id", cursor_field="updated_at", subject_key="email")
SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "email": {"type": "string"}}}


def land(lake, batch, ids, schema=SCHEMA):
    landing = BatchLanding(lake, "demo", batch, {"users": (STREAM, stream_schema(schema))})
    landing.add_all(
        {"stream": "users", "data": {"id": i, "email": f"{i}@x.io", "vip": True}, "emitted_at": 1} for i in ids
    )
    landing.publish(state=[])


def bronze_rows(lake):
    table = lake.delta_table(bronze_table_path(lake, "demo", "users")).to_pyarrow_table()
    return sorted(zip(table.column("_sluice_batch").to_pylist(), table.column("id").to_pylist(), strict=True))


def test_commit_replaces_only_its_batch_and_declares_the_keys(lake):
    land(lake, "20261120T000000Z", [1, 2])
    land(lake, "20261120T060000Z", [3])
    commit_batch("demo", STREAM, "20261120T000000Z", lake)
    commit_batch("demo", STREAM, "20261120T060000Z", lake)
    land(lake, "20261120T000000Z", [1, 2, 4])
    result = commit_batch("demo", STREAM, "20261120T000000Z", lake)
    assert result["rows"] == 3 and result["files"] == 1 and result["bytes"] > 0
    assert bronze_rows(lake) == [
        ("20261120T000000Z", 1),
        ("20261120T000000Z", 2),
        ("20261120T000000Z", 4),
        ("20261120T060000Z", 3),
    ]
    table = lake.delta_table(bronze_table_path(lake, "demo", "users"))
    assert table.metadata().partition_columns == ["_sluice_batch"]
    configuration = table.metadata().configuration
    assert configuration["sluice.recordKey"] == "id" and configuration["sluice.subjectKey"] == "email"


def test_commit_of_a_batch_never_landed_fails_clearly(lake):
    with pytest.raises(LandingError, match="has not been landed"):
        commit_batch("demo", STREAM, "20261120T000000Z", lake)


def test_load_of_a_table_never_committed_fails_clearly(lake, tmp_path):
    with pytest.raises(LookupError, match="no bronze table at .*bronze/demo/users: commit a batch"):
        load_batch("demo", "users", "20261120T000000Z", lake, tmp_path / "wh.duckdb")


def test_commit_rejects_a_batch_id_that_is_not_one(lake):
    with pytest.raises(ValueError, match="not a batch id"):
        commit_batch("demo", STREAM, "x' OR '1'='1", lake)


def test_load_is_idempotent_per_batch_and_adds_new_columns(lake, tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    land(lake, "20261120T000000Z", [1, 2])
    commit_batch("demo", STREAM, "20261120T000000Z", lake)
    for _ in range(2):
        load_batch("demo", "users", "20261120T000000Z", lake, warehouse)
    wider = {"type": "object", "properties": {**SCHEMA["properties"], "vip": {"type": "boolean"}}}
    land(lake, "20261120T060000Z", [3], schema=wider)
    commit_batch("demo", STREAM, "20261120T060000Z", lake)
    result = load_batch("demo", "users", "20261120T060000Z", lake, warehouse)
    assert result == {"table": "bronze.demo__users", "rows": 1}
    con = duckdb.connect(str(warehouse), read_only=True)
    rows = con.execute("SELECT _sluice_batch, id, vip FROM bronze.demo__users ORDER BY id").fetchall()
    assert rows == [("20261120T000000Z", 1, None), ("20261120T000000Z", 2, None), ("20261120T060000Z", 3, True)]
