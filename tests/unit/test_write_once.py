"""Data written once: the bronze commit registers the landed files instead of copying them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deltalake import DeltaTable

from e2e.snapshot import differences, lake_snapshot, snapshot
from sluice.core.sources import StreamConfig
from sluice.ingest.commit import commit_batch, commit_files
from sluice.ingest.landing import BatchLanding, landed_files, read_manifest
from sluice.ingest.schema import stream_schema
from sluice.lake.bronze import BronzeCommitError
from sluice.lake.storage import open_lake
from sluice.warehouse.duckdb_load import load_batch

B1, B2 = "20261120T000000Z", "20261120T060000Z"
STREAM = StreamConfig("users", record_key="id", subject_key="email")
SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "email": {"type": "string"}}}


@pytest.fixture
def lake(local_lake):
    """These tests look at the files themselves (inodes, modification times): a folder."""
    return local_lake


def landed(lake, source, stream, batch) -> list[Path]:
    return [Path(path) for path in landed_files(lake, source, stream, batch)]


def land(lake, batch, ids, schema=SCHEMA, stream=STREAM, data=None):
    landing = BatchLanding(lake, "demo", batch, {stream.name: (stream, stream_schema(schema))})
    landing.add_all(
        {"stream": stream.name, "data": data(i) if data else {"id": i, "email": f"{i}@x.io"}, "emitted_at": 1}
        for i in ids
    )
    landing.add({"stream": stream.name, "data": {"email": "nokey@x.io"}, "emitted_at": 1})  # quarantined
    return landing.publish(state=[])[stream.name]


def table_path(lake_root, stream="users") -> Path:
    return lake_root / "bronze" / "demo" / stream


def files_on_disk(lake_root) -> dict[str, tuple[int, int, int]]:
    """Every file of the lake outside Delta logs: size, inode and modification time."""
    return {
        path.relative_to(lake_root).as_posix(): (path.stat().st_size, path.stat().st_ino, path.stat().st_mtime_ns)
        for path in lake_root.rglob("*")
        if path.is_file() and "_delta_log" not in path.parts
    }


def log_entries(lake_root, stream="users") -> list[dict]:
    log = table_path(lake_root, stream) / "_delta_log"
    return [json.loads(line) for path in sorted(log.glob("*.json")) for line in path.read_text().splitlines()]


def test_the_commit_registers_the_landed_files_without_a_second_copy(lake, lake_root):
    manifest = land(lake, B1, range(5))
    before = files_on_disk(lake_root)
    result = commit_batch("demo", STREAM, B1, lake)

    assert files_on_disk(lake_root) == before, "the commit wrote no data file and rewrote none"
    table = DeltaTable(str(table_path(lake_root)))
    assert sorted(table.file_uris()) == sorted(str(path) for path in landed(lake, "demo", "users", B1))
    assert result["rows"] == 5 and result["files"] == 1 and result["bytes"] == manifest["bytes"]
    assert sorted(table.to_pyarrow_table().column("id").to_pylist()) == [0, 1, 2, 3, 4]
    assert table.metadata().configuration["delta.targetFileSize"] == str(128 * 1024 * 1024)
    assert table.metadata().configuration["sluice.subjectKey"] == "email"


def test_a_rerun_replaces_the_batch_its_old_files_are_tombstoned_then_vacuumed(lake, lake_root, monkeypatch):
    monkeypatch.delenv("SLUICE_BRONZE_RETENTION_HOURS", raising=False)
    land(lake, B1, [1, 2])
    first = landed(lake, "demo", "users", B1)
    commit_batch("demo", STREAM, B1, lake)
    land(lake, B1, [1, 2, 3])
    second = landed(lake, "demo", "users", B1)
    result = commit_batch("demo", STREAM, B1, lake)
    assert commit_batch("demo", STREAM, B1, lake)["version"] == result["version"]  # a retry: no new version

    table = DeltaTable(str(table_path(lake_root)))
    assert sorted(table.to_pyarrow_table().column("id").to_pylist()) == [1, 2, 3]
    assert sorted(table.file_uris()) == sorted(map(str, second))
    # replaced, kept for readers of the older version during the retention (168 h by default)
    assert all(path.exists() for path in first) and result["vacuumed"] == 0
    tombstones = table.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=True)
    assert sorted(tombstones) == sorted(path.relative_to(table_path(lake_root)).as_posix() for path in first)
    assert DeltaTable(str(table_path(lake_root)), version=result["version"] - 1).to_pyarrow_table().num_rows == 2

    monkeypatch.setenv("SLUICE_BRONZE_RETENTION_HOURS", "0")
    land(lake, B1, [1, 2, 3, 4])
    result = commit_batch("demo", STREAM, B1, lake)
    assert result["vacuumed"] == len(first) + len(second)
    assert not any(path.exists() for path in [*first, *second])
    folder = table_path(lake_root) / f"_sluice_batch={B1}"
    assert sorted(folder.iterdir()) == landed(lake, "demo", "users", B1)
    assert DeltaTable(str(table_path(lake_root))).to_pyarrow_table().num_rows == 4
    # the vacuumed files stay listed as tombstones; a retry neither commits nor vacuums again
    version = DeltaTable(str(table_path(lake_root))).version()
    assert commit_batch("demo", STREAM, B1, lake)["vacuumed"] == 0
    assert DeltaTable(str(table_path(lake_root))).version() == version


def test_a_new_column_evolves_the_table_schema(lake, lake_root):
    land(lake, B1, [1])
    commit_batch("demo", STREAM, B1, lake)
    wider = {"type": "object", "properties": {**SCHEMA["properties"], "vip": {"type": "boolean"}}}
    land(lake, B2, [2], schema=wider, data=lambda i: {"id": i, "email": "e", "vip": True})
    commit_batch("demo", STREAM, B2, lake)

    table = DeltaTable(str(table_path(lake_root)))
    assert "vip" in [field.name for field in table.schema().fields]
    rows = sorted(table.to_pyarrow_table(columns=["id", "vip"]).to_pylist(), key=lambda row: row["id"])
    assert rows == [{"id": 1, "vip": None}, {"id": 2, "vip": True}]


def test_a_conflicting_column_type_fails_clearly_and_loses_nothing(lake, lake_root):
    land(lake, B1, [1])
    commit_batch("demo", STREAM, B1, lake)
    version = DeltaTable(str(table_path(lake_root))).version()
    as_text = {"type": "object", "properties": {"id": {"type": "string"}, "email": {"type": "string"}}}
    land(lake, B2, [2], schema=as_text, data=lambda i: {"id": f"u{i}", "email": "e"})

    with pytest.raises(BronzeCommitError, match=r"landed column 'id' is string but the table has long"):
        commit_batch("demo", STREAM, B2, lake)
    table = DeltaTable(str(table_path(lake_root)))
    assert table.version() == version
    assert table.to_pyarrow_table().column("id").to_pylist() == [1]
    assert read_manifest(lake, "demo", "users", B2)["landed"] == 1
    assert all(path.exists() for path in landed(lake, "demo", "users", B2))


def test_statistics_carry_no_min_max_of_strings_other_than_the_record_key(lake, lake_root):
    stream = StreamConfig("accounts", record_key="code", subject_key="email")
    schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string"},
            "email": {"type": "string"},
            "score": {"type": "number"},
            "seen": {"type": "string", "format": "date-time"},
        },
    }
    land(
        lake,
        B1,
        range(3),
        schema=schema,
        stream=stream,
        data=lambda i: {
            "code": f"c{i}",
            "email": f"{i}@x.io",
            "score": i / 2,
            "seen": f"2026-11-20T06:00:0{i}.123456Z",
        },
    )
    commit_batch("demo", stream, B1, lake)

    (add,) = [entry["add"] for entry in log_entries(lake_root, "accounts") if "add" in entry]
    stats = json.loads(add["stats"])
    assert stats["numRecords"] == 3
    assert stats["minValues"]["code"] == "c0" and stats["maxValues"]["code"] == "c2"
    assert stats["minValues"]["score"] == 0.0 and stats["maxValues"]["score"] == 1.0
    # milliseconds, rounded outwards so the range still holds every value
    assert stats["minValues"]["seen"] == "2026-11-20T06:00:00.123Z"
    assert stats["maxValues"]["seen"] == "2026-11-20T06:00:02.124Z"
    strings = {"email", "_airbyte_raw_id", "_sluice_unmapped"}
    assert not strings & (set(stats["minValues"]) | set(stats["maxValues"]))
    assert stats["nullCount"]["email"] == 0 and stats["nullCount"]["_sluice_unmapped"] == 3
    assert "@x.io" not in json.dumps(log_entries(lake_root, "accounts"))
    # the table reads its own statistics back
    table = DeltaTable(str(table_path(lake_root, "accounts")))
    assert table.to_pyarrow_table(filters=[("score", ">", 0.7)]).column("code").to_pylist() == ["c2"]


def test_only_data_files_of_the_table_can_be_committed(lake, lake_root, tmp_path):
    land(lake, B1, [1])
    data = landed(lake, "demo", "users", B1)[0].read_bytes()
    table = table_path(lake_root)
    places = {
        "outside the table": tmp_path / "elsewhere.parquet",
        "in another batch's folder": table / f"_sluice_batch={B2}" / "x.parquet",
        "in a folder starting with _": table / "_tmp" / "x.parquet",
    }
    for path in places.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for path in places.values():
        with pytest.raises(BronzeCommitError, match="is not a data file of"):
            commit_files(lake, "demo", STREAM, B1, [str(path)])
    with pytest.raises(BronzeCommitError, match="hold 1 rows, not 2"):
        commit_files(lake, "demo", STREAM, B1, landed_files(lake, "demo", "users", B1), landed_rows=2)
    not_parquet = table / "airbyte" / "broken.parquet"
    not_parquet.parent.mkdir()
    not_parquet.write_text("not parquet")
    with pytest.raises(BronzeCommitError, match="broken.parquet is not Parquet"):
        commit_files(lake, "demo", STREAM, B1, [str(not_parquet)])
    assert not (table / "_delta_log").exists()
    assert not_parquet.read_text() == "not parquet"  # kept for inspection


def test_a_drivers_own_folder_is_registered_in_the_batchs_partition(lake, lake_root):
    """Files a driver wrote in a folder of its own join the batch by partition value."""
    land(lake, B1, [1, 2])
    commit_batch("demo", STREAM, B1, lake)
    own = table_path(lake_root) / "airbyte" / "2026_11_20_1_0.parquet"
    own.parent.mkdir()
    own.write_bytes(landed(lake, "demo", "users", B1)[0].read_bytes())
    before = files_on_disk(lake_root)[own.relative_to(lake_root).as_posix()]
    result = commit_files(lake, "demo", STREAM, B2, [str(own)], landed_rows=2)
    assert result["rows"] == 2
    table = DeltaTable(str(table_path(lake_root)))
    rows = table.to_pyarrow_table(filters=[("_sluice_batch", "=", B2)])
    assert rows.num_rows == 2
    assert table.to_pyarrow_table(filters=[("_sluice_batch", "=", B1)]).num_rows == 2
    assert files_on_disk(lake_root)[own.relative_to(lake_root).as_posix()] == before  # not copied
    # committing it again changes nothing
    assert commit_files(lake, "demo", STREAM, B2, [str(own)], landed_rows=2)["version"] == result["version"]


def test_snapshots_compare_reruns_by_content_not_by_file_name(tmp_path):
    data = tmp_path / "data"
    lake, warehouse = open_lake(str(data / "lake")), data / "warehouse" / "sluice.duckdb"

    def run() -> dict:
        land(lake, B1, [1, 2])
        commit_batch("demo", STREAM, B1, lake)
        load_batch("demo", "users", B1, lake, warehouse)
        return snapshot(data)

    first, second = run(), run()
    manifest = first["lake"][f"landing/demo/users/batch={B1}.json"]
    assert (manifest["read"], manifest["landed"], manifest["quarantined"]) == (3, 2, 1)
    assert manifest["files"] == [f"bronze/demo/users/_sluice_batch={B1}/2026_11_20_1795132800000_<attempt>_0.parquet"]
    assert len(first["lake"][f"quarantine/demo/users/batch={B1}/part-00000.parquet"]) == 1
    assert [len(f["rows"]) for f in first["lake"]["bronze/demo/users"]["files"].values()] == [2]
    assert differences(first, second) == []
    land(lake, B1, [1, 2, 3])
    changed = differences(first, {"lake": lake_snapshot(lake), "warehouse": first["warehouse"]})
    assert f"lake landing/demo/users/batch={B1}.json read: 3 vs 4" in changed
