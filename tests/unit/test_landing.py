"""Landing: layout, quarantine with reasons, reconciliation, atomic publish, reruns, state."""

from __future__ import annotations

import json
import uuid

import pyarrow.parquet as pq
import pytest

from sluice.ingest.landing import (
    BatchLanding,
    landed_files,
    read_manifest,
    save_state,
    state_before,
)
from sluice.ingest.schema import stream_schema
from sluice.sources import StreamConfig

BATCH = "20261120T060000Z"
USERS_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "email": {"type": ["null", "string"]},
        "updated_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


def users_landing(lake_root, batch=BATCH, **kwargs) -> BatchLanding:
    streams = {"users": (StreamConfig("users", record_key="id"), stream_schema(USERS_SCHEMA))}
    return BatchLanding(lake_root, "demo", batch, streams, **kwargs)


def record(data, stream="users", emitted_at=1_795_000_000_000):
    return {"stream": stream, "data": data, "emitted_at": emitted_at}


def test_lands_records_in_the_s3_destination_layout_with_airbyte_columns(lake_root):
    landing = users_landing(lake_root)
    landing.add(
        record(
            {
                "id": 1,
                "email": "a@x.io",
                "updated_at": "2026-11-20T06:01:00+00:00",
                "address": {"city": "Oslo"},
                "tags": ["vip"],
            }
        )
    )
    landing.add(record({"id": 2, "email": None, "updated_at": "2026-11-20T06:02:00"}))
    manifests = landing.publish(state=[])

    files = landed_files(lake_root, "demo", "users", BATCH)
    assert [f.name for f in files] == ["2026_11_20_1795154400000_0.parquet"]
    assert files[0].parent == lake_root / "landing" / "demo" / "users" / f"batch={BATCH}"
    table = pq.read_table(files[0])
    assert table.column_names[:4] == [
        "_airbyte_raw_id",
        "_airbyte_extracted_at",
        "_airbyte_generation_id",
        "_airbyte_meta",
    ]
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == [1, 2]
    raw_ids = [uuid.UUID(r["_airbyte_raw_id"]) for r in rows]
    assert len(set(raw_ids)) == 2 and raw_ids[0].version == 5
    assert rows[0]["address"] == {"city": "Oslo"}
    assert json.loads(rows[0]["tags"]) == ["vip"]  # no fixed shape: kept as JSON text
    # a zoned timestamp without offset is read as UTC, like Airbyte's destinations do
    assert rows[1]["updated_at"].isoformat() == "2026-11-20T06:02:00+00:00"
    assert manifests["users"]["read"] == 2 and manifests["users"]["landed"] == 2


def test_bad_records_are_quarantined_with_their_reason_and_counts_reconcile(lake_root):
    landing = users_landing(lake_root, buffer_rows=3)
    good = [record({"id": i, "email": f"{i}@x.io", "updated_at": "2026-11-20T06:00:00Z"}) for i in range(5)]
    bad = [
        record({"email": "nokey@x.io"}),
        record({"id": "not-a-number"}),
        record({"id": 9, "updated_at": "yesterday"}),
        record("not an object"),
        record({"id": 1}, stream="unknown_stream"),
    ]
    landing.add_all(good[:2] + bad + good[2:])
    manifests = landing.publish(state=[])

    assert manifests["users"] | {"files": None} == {
        "source": "demo",
        "stream": "users",
        "batch": BATCH,
        "read": 9,
        "landed": 5,
        "quarantined": 4,
        "files": None,
    }
    landed = pq.read_table(landed_files(lake_root, "demo", "users", BATCH)).to_pylist()
    assert sorted(r["id"] for r in landed) == [0, 1, 2, 3, 4]
    quarantine = lake_root / "quarantine" / "demo" / "users" / f"batch={BATCH}"
    kept = {r["_airbyte_data"]: r["_sluice_reason"] for r in pq.read_table(quarantine).to_pylist()}
    assert kept['{"email": "nokey@x.io"}'] == "record key 'id' is missing"
    assert kept['{"id": "not-a-number"}'].startswith("does not fit the stream schema")
    assert kept['{"id": 9, "updated_at": "yesterday"}'].startswith("does not fit the stream schema")
    assert kept['"not an object"'] == "record data is not a JSON object"
    undeclared = pq.read_table(lake_root / "quarantine" / "demo" / "_undeclared" / f"batch={BATCH}").to_pylist()
    assert undeclared[0]["_sluice_reason"] == "stream is not declared for this source"


def test_unknown_fields_are_kept_not_dropped(lake_root):
    landing = users_landing(lake_root)
    landing.add(record({"id": 1, "loyalty": {"tier": "gold"}}))
    landing.publish(state=[])
    (row,) = pq.read_table(landed_files(lake_root, "demo", "users", BATCH)).to_pylist()
    assert json.loads(row["_sluice_unmapped"]) == {"loyalty": {"tier": "gold"}}


def test_nothing_is_visible_until_publish_and_a_rerun_replaces_the_batch(lake_root):
    first = users_landing(lake_root)
    first.add_all(record({"id": i}) for i in range(10))
    final = lake_root / "landing" / "demo" / "users" / f"batch={BATCH}"
    first.writers["users"].flush()
    assert not final.exists()  # written, but only under _tmp
    first.publish(state=[{"type": "STREAM", "n": 1}])
    assert read_manifest(lake_root, "demo", "users", BATCH)["landed"] == 10

    second = users_landing(lake_root)
    second.add_all(record({"id": i}) for i in range(3))
    second.publish(state=[])
    files = landed_files(lake_root, "demo", "users", BATCH)
    assert pq.read_table(files).num_rows == 3
    assert read_manifest(lake_root, "demo", "users", BATCH)["landed"] == 3
    assert not any((lake_root / "landing" / "demo" / "_tmp").iterdir())


def test_an_aborted_attempt_leaves_the_published_batch_untouched(lake_root):
    first = users_landing(lake_root)
    first.add_all(record({"id": i}) for i in range(4))
    first.publish(state=[])
    failed = users_landing(lake_root)
    failed.add_all(record({"id": i}) for i in range(100))
    failed.abort()
    assert pq.read_table(landed_files(lake_root, "demo", "users", BATCH)).num_rows == 4


def test_files_roll_over_at_the_row_limit(lake_root):
    landing = users_landing(lake_root, buffer_rows=10, rows_per_file=20)
    landing.add_all(record({"id": i}) for i in range(45))
    manifests = landing.publish(state=[])
    assert len(manifests["users"]["files"]) == 3
    assert pq.read_table(landed_files(lake_root, "demo", "users", BATCH)).num_rows == 45


def test_a_batch_resumes_from_the_state_of_the_latest_earlier_batch(lake_root):
    assert state_before(lake_root, "demo", BATCH) == []
    save_state(lake_root, "demo", "20261120T000000Z", [{"cursor": "a"}])
    save_state(lake_root, "demo", "20261120T060000Z", [{"cursor": "b"}])
    save_state(lake_root, "demo", "20261120T120000Z", [{"cursor": "c"}])
    # a rerun of 06:00 starts where 00:00 left off, not from its own later state
    assert state_before(lake_root, "demo", "20261120T060000Z") == [{"cursor": "a"}]
    assert state_before(lake_root, "demo", "20261121T000000Z") == [{"cursor": "c"}]


def test_malformed_batch_id_is_rejected(lake_root):
    with pytest.raises(ValueError, match="not a batch id"):
        users_landing(lake_root, batch="2026-11-20")
