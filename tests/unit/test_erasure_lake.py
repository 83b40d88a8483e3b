"""Erasing people from a bronze table: only the files holding them are rewritten, in one commit."""

from __future__ import annotations

import threading

import pytest
from test_erasure_index import B1, B2, SALT, USERS, land_and_commit

from residue import files_holding
from sluice.lake import rewrite as erasure_lake
from sluice.lake.files import active_files, bronze_table
from sluice.lake.rewrite import erase_from_table

B3 = "20261120T120000Z"
PEOPLE = [(1, "ada@x.io"), (2, "bob@x.io"), (3, "cy@x.io"), (4, "di@x.io"), (5, "eve@x.io"), (6, "fay@x.io")]


def rows(lake):
    table = bronze_table(lake, "demo", "users").to_pyarrow_table(columns=["id", "email", "_sluice_batch"])
    return sorted(zip(*(table.column(n).to_pylist() for n in table.column_names), strict=True))


def files(lake):
    table = bronze_table(lake, "demo", "users")
    return {batch: active_files(table, batch) for batch in (B1, B2, B3)}


@pytest.fixture
def three_batches(lake, monkeypatch):
    monkeypatch.setenv("SLUICE_ERASURE_SALT", SALT.decode())
    land_and_commit(lake, B1, PEOPLE)  # three files of two rows
    land_and_commit(lake, B2, [(1, "Ada@X.io"), (7, "gus@x.io")])
    land_and_commit(lake, B3, [(8, "hal@x.io"), (9, "ivy@x.io")])
    return lake


def test_erasing_rewrites_only_the_files_holding_the_person_in_one_commit(three_batches):
    lake = three_batches
    before, files_before = rows(lake), files(lake)
    version = bronze_table(lake, "demo", "users").version()
    result = erase_from_table(lake, "demo", USERS, {"email": ["ada@x.io"]}, SALT)
    assert (result.files_holding, result.files_rewritten, result.rows_removed) == (2, 2, 2)
    assert result.version == version + 1 and result.batches == [B1, B2]
    after = rows(lake)
    assert [r for r in before if r[0] != 1] == after, "every other row is unchanged"
    files_after = files(lake)
    assert files_after[B3] == files_before[B3]
    assert len(files_before[B1] - files_after[B1]) == 1, "one file of three rewritten in the first batch"
    # by another identifier of someone else; then a rerun changes nothing
    assert erase_from_table(lake, "demo", USERS, {"user_id": [7]}, SALT).rows_removed == 1
    again = erase_from_table(lake, "demo", USERS, {"email": ["ada@x.io"], "user_id": [7]}, SALT)
    assert (again.files_holding, again.rows_removed, again.version) == (0, 0, None)
    assert bronze_table(lake, "demo", "users").version() == version + 2


def test_an_ingestion_commit_racing_the_erasure_survives_and_the_erasure_completes(three_batches, monkeypatch):
    lake = three_batches
    B4 = "20261120T180000Z"
    rewrite, raced, once = erasure_lake._rewrite, [], threading.Lock()

    def racing_rewrite(*args, **kwargs):
        with once:  # files are rewritten on several threads
            if not raced:  # another writer commits a batch while the erasure prepares its files
                raced.append(land_and_commit(lake, B4, [(10, "jo@x.io"), (1, "ada@x.io")]))
        return rewrite(*args, **kwargs)

    monkeypatch.setattr(erasure_lake, "_rewrite", racing_rewrite)
    result = erase_from_table(lake, "demo", USERS, {"email": ["ada@x.io"]}, SALT)
    assert raced and result.rows_removed == 3 and result.batches == [B1, B2, B4]
    remaining = rows(lake)
    assert (10, "jo@x.io", B4) in remaining and not [r for r in remaining if r[0] == 1]


def test_one_identifier_resolves_to_every_identifier_held_for_the_person(three_batches):
    import dataclasses

    from sluice.core.sources import SourceConfig, StreamConfig
    from sluice.erasure.resolve import RequestError, resolve

    lake = three_batches
    orders = StreamConfig("orders", record_key="id", subject_key="user_id", identifiers=(("user_id", "user_id"),))
    sources = [SourceConfig("demo", "source-x", "", "me", (USERS, orders))]
    assert resolve(lake, sources, {"email": [" ADA@x.io"]}, SALT) == {"email": {"ada@x.io"}, "user_id": {"1"}}
    assert resolve(lake, sources, {"user_id": [7]}, SALT) == {"user_id": {"7"}, "email": {"gus@x.io"}}
    with pytest.raises(RequestError, match=r"no data is held for 1 email identifier\(s\): nothing to erase"):
        resolve(lake, sources, {"email": ["nobody@x.io"]}, SALT)
    with pytest.raises(RequestError, match=r"identifier type\(s\) \['phone'\] are declared by no stream"):
        resolve(lake, sources, {"phone": ["555"]}, SALT)
    with pytest.raises(RequestError, match="names no identifier"):
        resolve(lake, [dataclasses.replace(sources[0])], {"email": []}, SALT)


def test_the_purge_leaves_no_identifier_anywhere_in_the_lake(three_batches):
    from test_erasure_index import SCHEMA

    from sluice.core.sources import SourceConfig
    from sluice.erasure.purge import purge_source
    from sluice.erasure.verify import scan_lake
    from sluice.ingest.landing import BatchLanding
    from sluice.ingest.schema import stream_schema
    from sluice.lake.index import identifier_hashes

    lake = three_batches
    landing = BatchLanding(lake, "demo", B3, {"users": (USERS, stream_schema(SCHEMA))})
    landing.add_all(
        [
            {"stream": "users", "data": {"id": 8, "email": "hal@x.io"}, "emitted_at": 1},
            {"stream": "users", "data": {"id": 9, "email": "ivy@x.io"}, "emitted_at": 1},
            {"stream": "users", "data": {"email": "ADA@x.io", "note": "no id"}, "emitted_at": 1},  # quarantined
        ]
    )
    landing.publish(state=[])
    from sluice.ingest.commit import commit_batch

    commit_batch("demo", USERS, B3, lake)
    ada = {"email": {"ada@x.io"}, "user_id": {"1"}}
    declared = {"bronze/demo/users": USERS.identifier_types, "quarantine/demo/users": USERS.identifier_types}
    before = scan_lake(lake, ada, declared)
    assert {f.path.split("/lake/", 1)[-1].split("/")[0] for f in before} >= {"bronze", "quarantine"}
    # the same, searched as bytes and decoded rows rather than by the product's scan
    hashes = [str(h) for h in identifier_hashes(ada, SALT)]
    found = files_holding(lake.root, ["ada@x.io", "bob@x.io"], lake.fs)
    assert {path.split("/")[0] for path in found["ada@x.io"]} == {"bronze", "quarantine"}
    assert all(files_holding(lake.path("index"), hashes, lake.fs).values()), "the index names her files"

    erase_from_table(lake, "demo", USERS, ada, SALT)
    current = bronze_table(lake, "demo", "users")
    live = {lake.path("bronze", "demo", "users", name) for b in (B1, B2, B3) for name in active_files(current, b)}
    left = scan_lake(lake, ada, declared)
    assert left and not [f for f in left if f.path in live], "only old versions and raw files hold them now"

    source = SourceConfig("demo", "source-x", "", "me", (USERS,))
    purged = purge_source(lake, source, ada, retention_hours=0, streams=["users"])
    assert purged["quarantined_records_removed"] == 1 and purged["files_deleted"] >= 2
    assert scan_lake(lake, ada, declared) == []
    assert scan_lake(lake, {"email": {"bob@x.io"}, "user_id": {"2"}}, declared), "nobody else was purged"
    found = files_holding(lake.root, ["ada@x.io", "bob@x.io"], lake.fs)
    assert not found["ada@x.io"] and any(path.startswith("bronze/") for path in found["bob@x.io"])
    assert files_holding(lake.path("index"), hashes, lake.fs) == dict.fromkeys(hashes, set())
    assert len(rows(lake)) == 8


def test_a_later_batch_that_sends_an_erased_person_again_drops_them_at_landing(three_batches):
    from sluice.ingest.landing import read_manifest
    from sluice.lake.index import identifier_hashes
    from sluice.lake.suppression import suppress, suppressed_hashes

    lake = three_batches
    ada = {"email": {"ada@x.io"}, "user_id": {"1"}}
    erase_from_table(lake, "demo", USERS, ada, SALT)
    assert suppress(lake, identifier_hashes(ada, SALT)) == 2
    assert suppress(lake, identifier_hashes(ada, SALT)) == 0 and len(suppressed_hashes(lake)) == 2
    B4 = "20261121T000000Z"
    land_and_commit(lake, B4, [(1, "Ada@X.io "), (10, "jo@x.io"), (11, "ada@x.io")])  # re-sent, by id or email
    manifest = read_manifest(lake, "demo", "users", B4)
    assert (manifest["read"], manifest["landed"], manifest["quarantined"], manifest["suppressed"]) == (3, 1, 0, 2)
    assert [r for r in rows(lake) if r[2] == B4] == [(10, "jo@x.io", B4)]


def test_a_driver_that_cannot_drop_erased_people_at_landing_has_them_dropped_at_the_commit(three_batches):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sluice.ingest.commit import commit_files
    from sluice.lake.index import identifier_hashes
    from sluice.lake.suppression import suppress

    lake = three_batches
    ada = {"email": {"ada@x.io"}, "user_id": {"1"}}
    erase_from_table(lake, "demo", USERS, ada, SALT)
    suppress(lake, identifier_hashes(ada, SALT))
    # a file written by another driver (an Airbyte server) in its own folder of the table
    path = lake.path("bronze", "demo", "users", "airbyte", "2026_11_21_0_0.parquet")
    data = pa.table({"id": pa.array([1, 12], pa.int64()), "email": ["Ada@x.io", "kim@x.io"]})
    with lake.open_output_stream(path) as out:
        pq.write_table(data, out)
    B4 = "20261121T000000Z"
    result = commit_files(lake, "demo", USERS, B4, [path], landed_rows=2)
    assert result["suppressed"] == 1
    assert [r for r in rows(lake) if r[2] == B4] == [(12, "kim@x.io", B4)]
