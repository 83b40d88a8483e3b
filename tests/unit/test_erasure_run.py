"""One erasure request through every step, on a local lake and a DuckDB warehouse:
resumable, idempotent, purged when due, refused when malformed."""

from __future__ import annotations

import json
from datetime import timedelta

import duckdb
import pyarrow.compute as pc
import pytest

from sluice.core.sources import load_source
from sluice.erasure import audit
from sluice.erasure import run as erasure_run
from sluice.erasure.requests import ErasureRequest, parse_requests, pending_requests, record_requests
from sluice.erasure.resolve import RequestError
from sluice.erasure.verify import scan_lake
from sluice.ingest.commit import commit_batch
from sluice.ingest.landing import BatchLanding
from sluice.ingest.schema import stream_schema
from sluice.lake.files import bronze_table
from sluice.warehouse import duckdb_load

SALT = b"run-salt"
B1, B2 = "20261120T000000Z", "20261120T060000Z"
USERS = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "email": {"type": "string"}, "name": {"type": "string"}},
}
PURCHASES = {"type": "object", "properties": {"id": {"type": "integer"}, "user_id": {"type": "integer"}}}
DECLARED = {
    "bronze/faker/users": {"id": "user_id", "email": "email"},
    "bronze/faker/purchases": {"user_id": "user_id"},
}


def land(lake, load):
    """Two faker batches in the lake, each loaded by ``load(stream, batch)``."""
    faker = load_source("faker")
    streams = {
        "users": (faker.stream("users"), stream_schema(USERS)),
        "purchases": (faker.stream("purchases"), stream_schema(PURCHASES)),
    }
    for batch, ids in ((B1, range(1, 6)), (B2, range(1, 4))):
        landing = BatchLanding(lake, "faker", batch, streams)
        landing.add_all(
            {"stream": "users", "data": {"id": i, "email": f"u{i}@x.io", "name": f"Person {i}"}, "emitted_at": 1}
            for i in ids
        )
        landing.add_all({"stream": "purchases", "data": {"id": 100 + i, "user_id": i}, "emitted_at": 1} for i in ids)
        landing.publish(state=[])
        for name in streams:
            commit_batch("faker", faker.stream(name), batch, lake)
            load(name, batch)


@pytest.fixture
def stack(local_lake, tmp_path, monkeypatch):
    """Two faker batches in the lake and the DuckDB bronze tables."""
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("SLUICE_WAREHOUSE_PATH", str(warehouse))
    monkeypatch.setenv("SLUICE_ERASURE_SALT", SALT.decode())
    land(local_lake, lambda name, batch: duckdb_load.load_batch("faker", name, batch, local_lake, warehouse))

    def connect():
        return duckdb.connect(str(warehouse))

    return local_lake, connect, warehouse


def held(connect, user_id):
    con = connect()
    try:
        cursor = con.cursor()
        found = []
        for table, column in (("faker__users", "id"), ("faker__purchases", "user_id")):
            cursor.execute(f"select count(*) from bronze.{table} where {column} = {int(user_id)}")
            found.append(cursor.fetchone()[0])
    finally:
        con.close()
    return tuple(found)


def test_a_request_is_erased_everywhere_proven_audited_and_closed(stack):
    lake, connect, warehouse = stack
    record_requests(
        lake, parse_requests({"requests": [{"request_id": "r1", "email": "U2@x.io"}]}, ["email", "user_id"])
    )
    (request,) = pending_requests(lake)
    result = erasure_run.process_request(lake, request, SALT, connect, lambda: None)
    assert result["state"] == "done" and held(connect, 2) == (0, 0) and held(connect, 3) == (2, 2)
    steps = audit.steps(lake, "r1")
    assert steps["erased_lake"]["tables"]["faker/users"] == {
        "files_holding": 2,
        "files_rewritten": 2,
        "rows_removed": 2,
    }
    assert steps["erased_warehouse"]["rows_removed"]["bronze.faker__purchases"] == 2
    assert steps["verified"]["clean"] and pending_requests(lake) == []
    assert scan_lake(lake, {"email": {"u2@x.io"}, "user_id": {"2"}}, DECLARED) == []
    # sent again: nothing changes, and its new copy of the identifiers is removed
    version = bronze_table(lake, "faker", "users").version()
    record_requests(lake, [ErasureRequest("r1", {"email": ["u2@x.io"]})])
    again = erasure_run.process_request(lake, pending_requests(lake)[0], SALT, connect, None)
    assert again == {"request_id": "r1", "state": "done", "changed": False} and pending_requests(lake) == []
    assert bronze_table(lake, "faker", "users").version() == version


def test_a_personal_value_only_the_person_had_is_proof_of_a_forgotten_copy(stack):
    from sluice.erasure.pii import unattributed
    from sluice.lake.rewrite import ErasureError

    lake, connect, _ = stack
    # an export nobody declared kept a name of the person, and one of someone still here
    export = lake.path("exports", "people.json")
    lake.write_bytes(export, b'{"who": "Person 2 "}\n{"who": "Person 3"}\n{"note": "Person 22"}\n')
    record_requests(lake, [ErasureRequest("r5", {"email": ["u2@x.io"]})])
    with pytest.raises(ErasureError, match="still held in 1 lake file"):
        erasure_run.process_request(lake, pending_requests(lake)[0], SALT, connect, None)
    steps = audit.steps(lake, "r5")
    assert steps["resolved"]["personal_values"] == {"pii:name": 1}
    assert steps["verified"]["lake_findings"] == [{"path": "exports/people.json", "type": "pii:name", "where": "who"}]
    assert "Person" not in json.dumps(audit.rows(lake), default=str)  # the audit names types, never values
    # a value someone else still has proves nothing
    faker = [load_source("faker")]
    assert unattributed(lake, faker, {"pii:name": {"person 2", "person 3"}}) == {"pii:name": {"person 2"}}

    lake.delete_files([export])  # the copy is found and deleted: the retry completes
    assert erasure_run.process_request(lake, pending_requests(lake)[0], SALT, connect, None)["state"] == "done"
    assert pending_requests(lake) == []  # the kept values went with the request


def test_a_run_killed_half_way_is_completed_by_its_retry(stack, monkeypatch):
    lake, connect, _ = stack
    record_requests(lake, [ErasureRequest("r2", {"email": ["u3@x.io"]})])
    original = erasure_run.erase_from_table

    def killed(lake_, source, stream, identifiers, salt):
        if stream.name == "users":  # the purchases were erased, then the worker died
            raise KeyboardInterrupt
        return original(lake_, source, stream, identifiers, salt)

    monkeypatch.setattr(erasure_run, "erase_from_table", killed)
    with pytest.raises(KeyboardInterrupt):
        erasure_run.process_request(lake, pending_requests(lake)[0], SALT, connect, None)
    assert held(connect, 3) == (0, 0), "the warehouse step had completed"
    monkeypatch.setattr(erasure_run, "erase_from_table", original)
    assert erasure_run.process_request(lake, pending_requests(lake)[0], SALT, connect, None)["state"] == "done"
    assert scan_lake(lake, {"email": {"u3@x.io"}, "user_id": {"3"}}, DECLARED) == []
    assert len([1 for row in audit.rows(lake) if row["step"] == "resolved"]) == 1


def test_with_a_retention_the_purge_waits_until_it_is_due(stack, monkeypatch):
    lake, connect, _ = stack
    monkeypatch.setenv("SLUICE_ERASURE_RETENTION_HOURS", "24")
    record_requests(lake, [ErasureRequest("r3", {"user_id": ["4"]})])
    first = erasure_run.process_request(lake, pending_requests(lake)[0], SALT, connect, None)
    assert first["state"] == "purge_pending" and held(connect, 4) == (0, 0)
    assert scan_lake(lake, {"user_id": {"4"}, "email": {"u4@x.io"}}, DECLARED), "old versions hold them until the purge"
    due = audit.steps(lake, "r3")["erased_lake"]["at"] + timedelta(hours=24, minutes=1)
    done = erasure_run.process_request(lake, pending_requests(lake)[0], SALT, connect, None, now=due)
    assert done["state"] == "done"
    assert scan_lake(lake, {"user_id": {"4"}, "email": {"u4@x.io"}}, DECLARED) == []


@pytest.mark.parametrize(
    "conf, message",
    [
        ({"requests": "ada@x.io"}, "expected a conf like"),
        ({"requests": [{"request_id": "x"}]}, "names no identifier"),
        ({"requests": [{"passport": "X1"}]}, r"identifier type\(s\) \['passport'\] are declared by no stream"),
        ({"requests": [{"email": ""}]}, "email must be a non-empty value"),
        ({"requests": [{"email": {"a": 1}}]}, "email must be a non-empty value"),
    ],
)
def test_malformed_requests_are_refused_before_anything_is_recorded(conf, message):
    with pytest.raises(RequestError, match=message):
        parse_requests(conf, ["email", "user_id"])


def test_on_snowflake_the_people_leave_every_warehouse_table_and_the_lake(local_lake, fakesnow_server, monkeypatch):
    import snowflake.connector

    from fakesnow_db import new_database
    from sluice.warehouse import snowflake_load

    monkeypatch.setenv("SLUICE_ERASURE_SALT", SALT.decode())
    database = new_database(fakesnow_server)

    def connect():
        return snowflake.connector.connect(**fakesnow_server, database=database, schema="BRONZE")

    loader = connect()
    land(local_lake, lambda name, batch: snowflake_load.load_batch("faker", name, batch, loader, local_lake))
    loader.close()
    assert held(connect, 5) == (1, 1)
    record_requests(local_lake, [ErasureRequest("sf", {"email": ["u5@x.io"]})])
    result = erasure_run.process_request(local_lake, pending_requests(local_lake)[0], SALT, connect, None)
    assert result["state"] == "done" and held(connect, 5) == (0, 0) and held(connect, 1) == (2, 2)
    assert audit.steps(local_lake, "sf")["erased_warehouse"]["rows_removed"] == {
        "bronze.faker__users": 1,
        "bronze.faker__purchases": 1,
    }


@pytest.mark.s3
def test_on_the_s3_server_a_request_leaves_nothing_in_the_lake(radosgw, tmp_path, monkeypatch):
    from s3servers import use_bucket
    from sluice.lake.storage import open_lake

    lake = open_lake(use_bucket(radosgw, monkeypatch))
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("SLUICE_ERASURE_SALT", SALT.decode())
    land(lake, lambda name, batch: duckdb_load.load_batch("faker", name, batch, lake, warehouse))

    def connect():
        return duckdb.connect(str(warehouse))

    before = (
        bronze_table(lake, "faker", "users")
        .to_pyarrow_table()
        .sort_by([("id", "ascending"), ("_sluice_batch", "ascending")])
    )
    record_requests(lake, [ErasureRequest("s3", {"email": ["u1@x.io"]}), ErasureRequest("s3b", {"user_id": ["2"]})])
    for request in pending_requests(lake):
        assert erasure_run.process_request(lake, request, SALT, connect, None)["state"] == "done"
    assert held(connect, 1) == held(connect, 2) == (0, 0) and held(connect, 3) == (2, 2)
    for user_id in (1, 2):
        assert scan_lake(lake, {"email": {f"u{user_id}@x.io"}, "user_id": {str(user_id)}}, DECLARED) == []
    after = (
        bronze_table(lake, "faker", "users")
        .to_pyarrow_table()
        .sort_by([("id", "ascending"), ("_sluice_batch", "ascending")])
    )
    others = before.filter(pc.greater(before.column("id"), 2))
    assert after.select(others.column_names).equals(others), "the other people's rows are untouched"
