"""Landing: layout, quarantine with reasons, reconciliation, atomic publish, reruns, state."""

from __future__ import annotations

import json
import re
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sluice.ingest.landing import (
    BatchLanding,
    LandingError,
    landed_files,
    manifest_path,
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
    # landed once, where the bronze table registers it: no copy is made later
    assert files[0].parent == lake_root / "bronze" / "demo" / "users" / f"_sluice_batch={BATCH}"
    assert re.fullmatch(r"2026_11_20_1795154400000_[0-9a-f]{8}_0\.parquet", files[0].name)
    assert manifests["users"]["files"] == [files[0].relative_to(lake_root).as_posix()]
    assert manifests["users"]["bytes"] == files[0].stat().st_size
    assert files[0].name.split("_")[4] == manifests["users"]["attempt"]
    table = pq.read_table(files[0])
    assert table.column_names[:4] == [
        "_airbyte_raw_id",
        "_airbyte_extracted_at",
        "_airbyte_generation_id",
        "_airbyte_meta",
    ]
    # microseconds, the precision of Delta tables, so the file matches the table's schema
    assert table.schema.field("_airbyte_extracted_at").type == pa.timestamp("us", tz="UTC")
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[0]["_airbyte_extracted_at"].timestamp() == 1_795_000_000
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

    assert manifests["users"] | {"files": None, "attempt": None, "bytes": None} == {
        "source": "demo",
        "stream": "users",
        "batch": BATCH,
        "attempt": None,
        "read": 9,
        "landed": 5,
        "quarantined": 4,
        "bytes": None,
        "files": None,
    }
    assert read_manifest(lake_root, "demo", "users", BATCH) == manifests["users"]
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


def batch_files(lake_root):
    return sorted((lake_root / "bronze" / "demo" / "users" / f"_sluice_batch={BATCH}").iterdir())


def test_nothing_is_published_before_the_manifest_and_a_rerun_replaces_the_batch(lake_root):
    first = users_landing(lake_root)
    first.add_all(record({"id": i}) for i in range(10))
    first.writers["users"].flush()
    first._background.drain()
    assert batch_files(lake_root)  # written, but no manifest names them yet
    with pytest.raises(LandingError, match="has not been landed"):
        landed_files(lake_root, "demo", "users", BATCH)
    assert not (lake_root / "bronze" / "demo" / "users" / "_delta_log").exists()
    first.publish(state=[{"type": "STREAM", "n": 1}])
    assert read_manifest(lake_root, "demo", "users", BATCH)["landed"] == 10
    first_files = landed_files(lake_root, "demo", "users", BATCH)

    second = users_landing(lake_root)
    second.add_all(record({"id": i}) for i in range(3))
    second.publish(state=[])
    files = landed_files(lake_root, "demo", "users", BATCH)
    assert pq.read_table(files).num_rows == 3
    assert read_manifest(lake_root, "demo", "users", BATCH)["landed"] == 3
    assert not set(files) & set(first_files), "every attempt writes new file names"
    # the replaced manifest's files were never committed: nothing references them
    assert batch_files(lake_root) == files
    assert [p.name for p in manifest_path(lake_root, "demo", "users", BATCH).parent.iterdir()] == [
        f"batch={BATCH}.json"
    ]


def test_an_aborted_attempt_leaves_the_published_batch_untouched_and_removes_its_files(lake_root):
    first = users_landing(lake_root)
    first.add_all(record({"id": i}) for i in range(4))
    first.publish(state=[])
    published = landed_files(lake_root, "demo", "users", BATCH)
    failed = users_landing(lake_root)
    failed.add_all(record({"id": i}) for i in range(100))
    failed.writers["users"].flush()
    failed.abort()
    assert pq.read_table(landed_files(lake_root, "demo", "users", BATCH)).num_rows == 4
    assert batch_files(lake_root) == published


def test_a_killed_attempts_leftovers_go_with_the_next_attempt_but_the_published_files_stay(lake_root):
    first = users_landing(lake_root)
    first.add_all(record({"id": i}) for i in range(4))
    first.publish(state=[])
    published = landed_files(lake_root, "demo", "users", BATCH)
    killed = users_landing(lake_root)  # never published nor aborted, as if killed
    killed.add_all(record({"id": i}) for i in range(7))
    killed.writers["users"].flush()
    killed._background.drain()
    killed._background.stop()
    stale_manifest = manifest_path(lake_root, "demo", "users", BATCH).with_name(f".batch={BATCH}.json.0badc0de.tmp")
    stale_manifest.write_text("{")
    assert len(batch_files(lake_root)) == 2

    users_landing(lake_root)  # the next attempt starts
    assert batch_files(lake_root) == published  # still the published batch, ready to commit
    assert not stale_manifest.exists()


def test_a_rerun_without_bad_records_clears_the_batchs_quarantine(lake_root):
    first = users_landing(lake_root)
    first.add_all([record({"id": 1}), record({"email": "nokey@x.io"})])
    first.publish(state=[])
    quarantine = lake_root / "quarantine" / "demo" / "users" / f"batch={BATCH}"
    assert pq.read_table(quarantine).num_rows == 1
    second = users_landing(lake_root)
    second.add(record({"id": 1}))
    assert second.publish(state=[])["users"]["quarantined"] == 0
    assert not quarantine.exists()


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
