"""Two processes committing to one bronze table on S3 at the same moment both land.

Delta commits on S3 are conditional PUTs of the next log entry: the loser of a race sees
the winner's entry, checks it does not conflict (another batch's partition) and commits
as the next version. Run on radosgw, in separate processes like two Airflow tasks.

Each writer reports every commit attempt it made to the bronze table: the version it read
(None: no table yet) and the version it committed, or the error. A barrier between reading
and committing holds both writers until both have read, so the race is certain: both read
the same version and one of them commits on top of the other's commit.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from s3servers import use_bucket
from sluice.core.sources import StreamConfig
from sluice.ingest.commit import commit_batch
from sluice.ingest.landing import BatchLanding
from sluice.ingest.schema import stream_schema
from sluice.lake.bronze import bronze_table_path, declared_keys
from sluice.lake.storage import open_lake

pytestmark = pytest.mark.s3
STREAM = StreamConfig("users", record_key="id", subject_key="email")
SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "email": {"type": "string"}}}
# The two Delta calls the bronze commit makes (create the table, or commit to it) are wrapped:
# the first waits at the barrier (a file per writer in a shared folder) and each records the
# version it read and the log entry that holds its batch's files after it returned. Commits to
# other tables (the subject index) pass through unrecorded.
COMMIT = """
import json, pathlib, sys, time
import deltalake, deltalake.transaction
from sluice.ingest.commit import commit_batch
from sluice.lake.storage import open_lake
from sluice.core.sources import StreamConfig
from sluice.lake.bronze import bronze_table_path
root, batch, barrier = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
stream = StreamConfig("users", record_key="id", subject_key="email")
lake = open_lake(root)
log = bronze_table_path(lake, "demo", "users") + "/_delta_log"
attempts = []

def holding_my_files(after):
    version = after + 1
    while not any(
        json.loads(line).get("add", {}).get("partitionValues", {}).get("_sluice_batch") == batch
        for line in lake.read_bytes(f"{log}/{version:020d}.json").decode().splitlines()
    ):
        version += 1
    return version

def wait_for_both():
    if len(attempts) == 1:
        (barrier / batch).touch()
        deadline = time.time() + 90
        while len(list(barrier.iterdir())) < 2:
            assert time.time() < deadline, "the other writer never read the table"
            time.sleep(0.01)

def recorded(table_uri, commit, read):
    if "/bronze/demo/users" not in table_uri:
        return commit()
    attempt = {"read": read()}
    attempts.append(attempt)
    wait_for_both()
    try:
        commit()
    except Exception as error:
        attempt["error"] = str(error)
        raise
    attempt["committed"] = holding_my_files(-1 if attempt["read"] is None else attempt["read"])

def create_table(table_uri, *args, **kwargs):
    return recorded(table_uri, lambda: create(table_uri, *args, **kwargs), lambda: None)

def write_transaction(table, *args, **kwargs):
    return recorded(table.table_uri, lambda: write(table, *args, **kwargs), table.version)

create, write = deltalake.transaction.create_table_with_add_actions, deltalake.DeltaTable.create_write_transaction
deltalake.transaction.create_table_with_add_actions = create_table
deltalake.DeltaTable.create_write_transaction = write_transaction
commit_batch("demo", stream, batch, lake)
print(json.dumps(attempts))
"""


def land(lake, batch: str, ids: range) -> None:
    landing = BatchLanding(lake, "demo", batch, {"users": (STREAM, stream_schema(SCHEMA))})
    landing.add_all({"stream": "users", "data": {"id": i, "email": f"{i}@x.io"}, "emitted_at": 1} for i in ids)
    landing.publish(state=[])


def commit_at_once(root: str, batches: list[str], barrier) -> list[list[dict]]:
    """Each writer's commit attempts to the bronze table, in order."""
    barrier.mkdir()
    procs = [
        subprocess.Popen([sys.executable, "-c", COMMIT, root, batch, str(barrier)], stdout=subprocess.PIPE, text=True)
        for batch in batches
    ]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    return [json.loads(output.splitlines()[-1]) for output in outputs]


@pytest.mark.parametrize("table_exists", [False, True], ids=["both-create-the-table", "both-add-a-batch"])
def test_two_concurrent_commits_to_one_table_both_land(radosgw, monkeypatch, tmp_path, table_exists):
    root = use_bucket(radosgw, monkeypatch)
    lake = open_lake(root)
    read = None
    if table_exists:
        land(lake, "20261120T000000Z", range(0, 10))
        read = commit_batch("demo", STREAM, "20261120T000000Z", lake)["version"]
    batches = ["20261120T060000Z", "20261120T120000Z"]
    for n, batch in enumerate(batches):
        land(lake, batch, range(100 * (n + 1), 100 * (n + 1) + 50))

    writers = commit_at_once(root, batches, tmp_path / "barrier")

    assert [attempts[0]["read"] for attempts in writers] == [read, read], writers  # the barrier held both
    winner, loser = sorted(writers, key=lambda attempts: attempts[-1]["committed"])
    assert winner == [{"read": read, "committed": 0 if read is None else read + 1}], writers
    # the loser committed over the winner's commit, which it had not read: delta-rs resolved the
    # conflict, or the commit lost the race and Sluice prepared it again from the table as it was
    assert all("error" in attempt for attempt in loser[:-1]) and "error" not in loser[-1], writers
    assert loser[-1]["committed"] > winner[0]["committed"], writers
    if table_exists:  # nothing else commits to the table meanwhile
        assert loser[-1]["committed"] == read + 2, writers

    table = lake.delta_table(bronze_table_path(lake, "demo", "users"))
    partitions = sorted(p["_sluice_batch"] for p in table.partitions())
    assert partitions == (["20261120T000000Z"] if table_exists else []) + batches
    assert table.to_pyarrow_table().num_rows == 100 + (10 if table_exists else 0)
    # a create written over the winner's re-declares the metadata: the stream's keys are set again
    assert declared_keys(STREAM).items() <= table.metadata().configuration.items()
    operations = [entry["operation"] for entry in table.history()]
    assert len(operations) == len(set(entry["version"] for entry in table.history())), "no version written twice"
