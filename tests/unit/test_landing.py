"""Landing: layout, quarantine with reasons, reconciliation, atomic publish, reruns, state."""

from __future__ import annotations

import json
import posixpath
import re
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sluice.core.sources import StreamConfig
from sluice.ingest.landing import (
    BatchLanding,
    LandingError,
    landed_files,
    manifest_path,
    quarantine_folder,
    read_manifest,
    save_state,
    state_before,
)
from sluice.ingest.schema import stream_schema

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


def users_landing(lake, batch=BATCH, **kwargs) -> BatchLanding:
    streams = {"users": (StreamConfig("users", record_key="id"), stream_schema(USERS_SCHEMA))}
    return BatchLanding(lake, "demo", batch, streams, **kwargs)


def record(data, stream="users", emitted_at=1_795_000_000_000):
    return {"stream": stream, "data": data, "emitted_at": emitted_at}


def read(lake, files) -> pa.Table:
    """Parquet files (or a folder of them) of the lake as one table."""
    return pq.read_table(files, filesystem=lake.fs)


def test_lands_records_in_the_s3_destination_layout_with_airbyte_columns(lake):
    landing = users_landing(lake)
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

    files = landed_files(lake, "demo", "users", BATCH)
    # landed once, where the bronze table registers it: no copy is made later
    folder, name = posixpath.split(files[0])
    assert folder == lake.path("bronze", "demo", "users", f"_sluice_batch={BATCH}")
    assert re.fullmatch(r"2026_11_20_1795154400000_[0-9a-f]{8}_0\.parquet", name)
    assert manifests["users"]["files"] == [f"bronze/demo/users/_sluice_batch={BATCH}/{name}"]
    assert manifests["users"]["bytes"] == lake.size(files[0])
    assert name.split("_")[4] == manifests["users"]["attempt"]
    table = read(lake, files[0])
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


def test_bad_records_are_quarantined_with_their_reason_and_counts_reconcile(lake):
    landing = users_landing(lake, buffer_rows=3)
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
        "suppressed": 0,
        "bytes": None,
        "files": None,
    }
    assert read_manifest(lake, "demo", "users", BATCH) == manifests["users"]
    landed = read(lake, landed_files(lake, "demo", "users", BATCH)).to_pylist()
    assert sorted(r["id"] for r in landed) == [0, 1, 2, 3, 4]
    quarantine = quarantine_folder(lake, "demo", "users", BATCH)
    kept = {r["_airbyte_data"]: r["_sluice_reason"] for r in read(lake, quarantine).to_pylist()}
    assert kept['{"email": "nokey@x.io"}'] == "record key 'id' is missing"
    assert kept['{"id": "not-a-number"}'].startswith("does not fit the stream schema")
    assert kept['{"id": 9, "updated_at": "yesterday"}'].startswith("does not fit the stream schema")
    assert kept['"not an object"'] == "record data is not a JSON object"
    undeclared = read(lake, quarantine_folder(lake, "demo", "_undeclared", BATCH)).to_pylist()
    assert undeclared[0]["_sluice_reason"] == "stream is not declared for this source"


def test_unknown_fields_are_kept_not_dropped(lake):
    landing = users_landing(lake)
    landing.add(record({"id": 1, "loyalty": {"tier": "gold"}}))
    landing.publish(state=[])
    (row,) = read(lake, landed_files(lake, "demo", "users", BATCH)).to_pylist()
    assert json.loads(row["_sluice_unmapped"]) == {"loyalty": {"tier": "gold"}}


def batch_files(lake):
    return lake.list_files(lake.path("bronze", "demo", "users", f"_sluice_batch={BATCH}"))


def test_nothing_is_published_before_the_manifest_and_a_rerun_replaces_the_batch(lake):
    first = users_landing(lake)
    first.add_all(record({"id": i}) for i in range(10))
    first.writers["users"].flush()
    first._background.drain()
    assert first.writers["users"].files  # being written, but no manifest names them yet
    with pytest.raises(LandingError, match="has not been landed"):
        landed_files(lake, "demo", "users", BATCH)
    assert lake.list_files(lake.path("bronze", "demo", "users", "_delta_log")) == []
    first.publish(state=[{"type": "STREAM", "n": 1}])
    assert read_manifest(lake, "demo", "users", BATCH)["landed"] == 10
    first_files = landed_files(lake, "demo", "users", BATCH)

    second = users_landing(lake)
    second.add_all(record({"id": i}) for i in range(3))
    second.publish(state=[])
    files = landed_files(lake, "demo", "users", BATCH)
    assert read(lake, files).num_rows == 3
    assert read_manifest(lake, "demo", "users", BATCH)["landed"] == 3
    assert not set(files) & set(first_files), "every attempt writes new file names"
    # the replaced manifest's files were never committed: nothing references them
    assert batch_files(lake) == files
    assert lake.list_files(lake.path("landing", "demo", "users")) == [manifest_path(lake, "demo", "users", BATCH)]


def test_an_aborted_attempt_leaves_the_published_batch_untouched_and_removes_its_files(lake):
    first = users_landing(lake)
    first.add_all(record({"id": i}) for i in range(4))
    first.publish(state=[])
    published = landed_files(lake, "demo", "users", BATCH)
    failed = users_landing(lake)
    failed.add_all(record({"id": i}) for i in range(100))
    failed.writers["users"].flush()
    failed.abort()
    assert read(lake, landed_files(lake, "demo", "users", BATCH)).num_rows == 4
    assert batch_files(lake) == published


def test_a_killed_attempts_leftovers_go_with_the_next_attempt_but_the_published_files_stay(local_lake, lake_root):
    lake = local_lake  # a killed rename leaves a temporary file only in a folder
    first = users_landing(lake)
    first.add_all(record({"id": i}) for i in range(4))
    first.publish(state=[])
    published = landed_files(lake, "demo", "users", BATCH)
    killed = users_landing(lake)  # never published nor aborted, as if killed
    killed.add_all(record({"id": i}) for i in range(7))
    killed.writers["users"].flush()
    killed._background.drain()
    killed._background.stop()
    stale_manifest = lake_root / "landing" / "demo" / "users" / f".batch={BATCH}.json.0badc0de.tmp"
    stale_manifest.write_text("{")
    assert len(batch_files(lake)) == 2

    users_landing(lake)  # the next attempt starts
    assert batch_files(lake) == published  # still the published batch, ready to commit
    assert not stale_manifest.exists()


def test_a_rerun_without_bad_records_clears_the_batchs_quarantine(lake):
    first = users_landing(lake)
    first.add_all([record({"id": 1}), record({"email": "nokey@x.io"})])
    first.publish(state=[])
    quarantine = quarantine_folder(lake, "demo", "users", BATCH)
    assert read(lake, quarantine).num_rows == 1
    second = users_landing(lake)
    second.add(record({"id": 1}))
    assert second.publish(state=[])["users"]["quarantined"] == 0
    assert lake.list_files(quarantine) == []


def test_files_roll_over_at_the_row_limit(lake):
    landing = users_landing(lake, buffer_rows=10, rows_per_file=20)
    landing.add_all(record({"id": i}) for i in range(45))
    manifests = landing.publish(state=[])
    assert len(manifests["users"]["files"]) == 3
    assert read(lake, landed_files(lake, "demo", "users", BATCH)).num_rows == 45


def test_a_batch_resumes_from_the_state_of_the_latest_earlier_batch(lake):
    assert state_before(lake, "demo", BATCH) == []
    save_state(lake, "demo", "20261120T000000Z", [{"cursor": "a"}])
    save_state(lake, "demo", "20261120T060000Z", [{"cursor": "b"}])
    save_state(lake, "demo", "20261120T120000Z", [{"cursor": "c"}])
    # a rerun of 06:00 starts where 00:00 left off, not from its own later state
    assert state_before(lake, "demo", "20261120T060000Z") == [{"cursor": "a"}]
    assert state_before(lake, "demo", "20261121T000000Z") == [{"cursor": "c"}]


def test_malformed_batch_id_is_rejected(lake):
    with pytest.raises(ValueError, match="not a batch id"):
        users_landing(lake, batch="2026-11-20")


ORDERS = StreamConfig("orders", record_key="id")


def orders_landing(lake, batch=BATCH) -> BatchLanding:
    from sluice.ingest.schema import StreamSchema

    schema = StreamSchema(pa.schema([("id", pa.int64()), ("amount", pa.float64())]), {}, frozenset())
    return BatchLanding(lake, "demo", batch, {"orders": (ORDERS, schema)})


def test_arrow_batches_land_as_records_do_their_keys_checked_and_their_raw_ids_in_read_order(lake):
    landing = orders_landing(lake)
    landing.add_batch(
        "orders", pa.table({"id": [1, None, 3], "amount": [1.5, 2.0, None]}), emitted_at=1_795_000_000_000
    )
    landing.reject("orders", "unparsable", {"line": 4})
    landing.add_batch("orders", pa.table({"id": [5], "amount": [9.0]}), emitted_at=1_795_000_000_000)
    manifest = landing.publish(state=[])["orders"]
    assert (manifest["read"], manifest["landed"], manifest["quarantined"]) == (5, 3, 2)
    table = read(lake, landed_files(lake, "demo", "orders", BATCH))
    assert table.column("id").to_pylist() == [1, 3, 5]
    prefix = str(uuid.uuid5(uuid.UUID("6b1f8e1c-5a43-4c1e-9f59-3c0b6f3d2a10"), f"demo/orders/{BATCH}"))[:-12]
    assert table.column("_airbyte_raw_id").to_pylist() == [f"{prefix}{i:012x}" for i in (0, 2, 4)]
    assert table.column("_airbyte_extracted_at")[0].as_py().timestamp() == 1_795_000_000
    assert table.column("_airbyte_meta").to_pylist()[0] == {
        "sync_id": landing.writers["orders"].meta["sync_id"],
        "changes": [],
    }
    kept = read(lake, quarantine_folder(lake, "demo", "orders", BATCH)).to_pylist()
    assert sorted(row["_sluice_reason"] for row in kept) == ["record key 'id' is missing", "unparsable"]


def test_an_input_refused_half_way_leaves_none_of_its_records_or_parts(lake, monkeypatch):
    import sluice.ingest.landing as landing_module

    monkeypatch.setattr(landing_module, "GROUP_BYTES", 1)  # every table is written at once, to the input's parts
    landing = orders_landing(lake)
    with landing.staged("orders"):
        landing.add_batch("orders", pa.table({"id": [1, 2], "amount": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="not well-formed"), landing.staged("orders"):
        landing.add_batch("orders", pa.table({"id": [3, None], "amount": [3.0, 4.0]}))
        landing.reject("orders", "a bad line", {"line": 3})
        landing.add_batch("orders", pa.table({"id": [5], "amount": [5.0]}))
        raise ValueError("not well-formed half-way")
    landing.reject("orders", "the file: not well-formed", {"file": "b"})
    with landing.staged("orders"):
        landing.add_batch("orders", pa.table({"id": [6], "amount": [6.0]}))
    manifest = landing.publish(state=[])["orders"]
    assert (manifest["read"], manifest["landed"], manifest["quarantined"]) == (4, 3, 1)
    assert read(lake, landed_files(lake, "demo", "orders", BATCH)).column("id").to_pylist() == [1, 2, 6]
    folder = posixpath.dirname(landed_files(lake, "demo", "orders", BATCH)[0])
    assert sorted(lake.list_files(folder)) == sorted(landed_files(lake, "demo", "orders", BATCH))  # no part of it left


def test_parts_written_before_the_schema_settled_are_rewritten_in_it(lake, monkeypatch):
    import sluice.ingest.landing as landing_module
    from sluice.ingest.schema import StreamSchema

    monkeypatch.setattr(landing_module, "GROUP_BYTES", 1)
    landing = orders_landing(lake)
    landing.add_batch("orders", pa.table({"id": [1], "amount": [1.0]}))
    landing.add_batch("orders", pa.table({"id": [2], "amount": [2.5], "note": ["x"]}))
    settled = pa.schema([("id", pa.int64()), ("amount", pa.float64()), ("note", pa.string())])
    landing.settle_schema("orders", StreamSchema(settled, {}, frozenset()))
    manifest = landing.publish(state=[])["orders"]
    assert manifest["landed"] == 2 and len(manifest["files"]) == 2
    for path in landed_files(lake, "demo", "orders", BATCH):
        assert pq.read_schema(path, filesystem=lake.fs).names[4:] == ["id", "amount", "note", "_sluice_unmapped"]
    assert read(lake, landed_files(lake, "demo", "orders", BATCH)).column("note").to_pylist() == [None, "x"]
