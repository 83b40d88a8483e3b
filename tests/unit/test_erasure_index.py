"""The erasure index: maintained at each bronze commit, hashed, checked against the table."""

from __future__ import annotations

import dataclasses

from sluice.core.sources import StreamConfig
from sluice.ingest.commit import commit_batch
from sluice.ingest.landing import BatchLanding
from sluice.ingest.schema import stream_schema
from sluice.lake.files import active_files, bronze_table
from sluice.lake.index import files_holding, identifier_hashes, index_path, verified_index

B1, B2 = "20261120T000000Z", "20261120T060000Z"
USERS = StreamConfig(
    "users",
    record_key="id",
    subject_key="email",
    identifiers=(("email", "email"), ("id", "user_id")),
    pii=("email",),
)
SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "email": {"type": "string"}}}
SALT = b"test-salt"


def land_and_commit(lake, batch, people, stream=USERS):
    streams = {"users": (stream, stream_schema(SCHEMA))}
    landing = BatchLanding(lake, "demo", batch, streams, buffer_rows=2, rows_per_file=2)
    landing.add_all({"stream": "users", "data": {"id": i, "email": email}, "emitted_at": 1} for i, email in people)
    landing.publish(state=[])
    return commit_batch("demo", stream, batch, lake)


def holding(lake, **identifiers):
    return files_holding(lake, "demo", "users", identifier_hashes(identifiers, SALT))


def files_with(lake, batch, user_id):
    table = bronze_table(lake, "demo", "users")
    found = set()
    for name in active_files(table, batch):
        import pyarrow.parquet as pq

        ids = pq.read_table(lake.path("bronze", "demo", "users", name), filesystem=lake.fs).column("id").to_pylist()
        if user_id in ids:
            found.add(name)
    return found


def test_the_index_names_exactly_the_files_holding_a_person_and_no_raw_identifier(lake, monkeypatch):
    monkeypatch.setenv("SLUICE_ERASURE_SALT", SALT.decode())
    result = land_and_commit(lake, B1, [(1, "ada@x.io"), (2, "bob@x.io"), (3, "cy@x.io"), (4, "di@x.io")])
    land_and_commit(lake, B2, [(1, " Ada@X.io "), (5, "eve@x.io")])
    assert result["indexed"] == 8 and result["files"] == 2
    # by email (any case and blanks) or by id: the same files, in both batches
    by_email = holding(lake, email=["ADA@x.io"])
    assert by_email == holding(lake, user_id=[1]) == {f: b for b in (B1, B2) for f in files_with(lake, b, 1)}
    assert set(by_email.values()) == {B1, B2}
    assert holding(lake, email=["nobody@x.io"]) == {}
    # salted hashes only: no identifier is written anywhere in the index
    from pyarrow.fs import FileSelector, FileType

    infos = lake.fs.get_file_info(FileSelector(index_path(lake, "demo", "users"), recursive=True))
    contents = b"".join(lake.read_bytes(info.path) for info in infos if info.type == FileType.File)
    assert contents and not any(value in contents for value in (b"ada@x.io", b"bob@x.io", b"Ada@X.io"))


def test_a_rerun_replaces_the_batch_entries_and_a_stale_index_is_rebuilt(lake, monkeypatch):
    monkeypatch.setenv("SLUICE_ERASURE_SALT", SALT.decode())
    land_and_commit(lake, B1, [(1, "ada@x.io"), (2, "bob@x.io")])
    land_and_commit(lake, B1, [(2, "bob@x.io"), (3, "cy@x.io")])  # rerun: ada is gone from the batch
    assert holding(lake, email=["ada@x.io"]) == {}
    assert set(holding(lake, email=["cy@x.io"])) == files_with(lake, B1, 3)
    # a batch committed without its index entries (an older release, a crash between the
    # two commits) is found and indexed before the index is trusted
    land_and_commit(lake, B2, [(4, "di@x.io")], stream=dataclasses.replace(USERS, identifiers=()))
    assert holding(lake, email=["di@x.io"]) == {}
    assert verified_index(lake, "demo", USERS, SALT) == [B2]
    assert set(holding(lake, user_id=[4])) == files_with(lake, B2, 4)
    assert verified_index(lake, "demo", USERS, SALT) == []
