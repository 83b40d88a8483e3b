"""A task killed while landing leaves nothing half-written visible, and the retry succeeds.

The batch was landed and committed once before: the killed relanding must leave that
committed version readable, and its retry must remove what the killed attempt wrote.
Run on a folder and on S3 (radosgw), where a file being written is an unfinished
multipart upload that no listing shows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from s3servers import use_bucket
from sluice.core.sources import load_source
from sluice.ingest.commit import commit_batch
from sluice.ingest.landing import landed_files, read_manifest
from sluice.lake.bronze import bronze_table_path
from sluice.lake.files import batch_folder, referenced_files
from sluice.lake.storage import Lake, open_lake

BATCH = "20261120T060000Z"
STREAMS = ("users", "products", "purchases")
SYNC = """
import sys
from dataclasses import replace
from sluice.core.sources import load_source
from sluice.ingest.local.sync import sync_batch
from sluice.lake.storage import open_lake
source = load_source("faker")
source = replace(source, connector_config={**source.connector_config, "count": int(sys.argv[2])})
print(sync_batch(source, sys.argv[3], lake=open_lake(sys.argv[1]))["users"]["landed"], flush=True)
"""


@dataclass
class KillCase:
    lake: Lake
    root: str
    #: true once the attempt has begun writing a users file of the batch
    writing: Callable[[set[str]], bool]
    #: users the killed attempt reads: enough to be killed while writing its first file
    count: int = 50_000


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def case(request, lake_root, monkeypatch) -> KillCase:
    if request.param == "local":
        lake = open_lake(str(lake_root))
        return KillCase(lake, str(lake_root), lambda published: batch_files(lake, "users") != published)
    # a file is uploaded in parts once it outgrows the first one (10 MB): 200k users do
    server = request.getfixturevalue("radosgw")
    root = use_bucket(server, monkeypatch)
    lake = open_lake(root)
    bucket, _, prefix = lake.path("bronze", "faker", "users").partition("/")

    def writing(published: set[str]) -> bool:  # an upload begun, not yet an object
        return bool(server.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads"))

    return KillCase(lake, root, writing, count=200_000)


def sync(root: str, count: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SYNC, root, str(count), BATCH],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def synced(root: str, count: int) -> int:
    proc = sync(root, count)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    return int(out.strip().splitlines()[-1])  # the last line; Airflow may log before it


def batch_files(lake: Lake, stream: str) -> set[str]:
    return set(lake.list_files(batch_folder(bronze_table_path(lake, "faker", stream), BATCH)))


def test_kill_mid_landing_then_retry(case):
    lake, users = case.lake, load_source("faker").stream("users")
    table_path = bronze_table_path(lake, "faker", "users")
    state_path = lake.path("state", "faker", f"batch={BATCH}.json")
    assert synced(case.root, 1_000) == 1_000
    committed = commit_batch("faker", users, BATCH, lake)
    manifests = {stream: read_manifest(lake, "faker", stream, BATCH) for stream in STREAMS}
    state = lake.read_bytes(state_path)

    proc = sync(case.root, case.count)
    published = set(landed_files(lake, "faker", "users", BATCH))
    deadline = time.monotonic() + 60
    # wait until the attempt has started writing its first users file, then kill it mid-file
    while not case.writing(published) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert proc.poll() is None, "the sync finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the task and its connector, like a lost worker
    proc.wait()

    # the published landing, the state and the committed version are what they were
    assert {stream: read_manifest(lake, "faker", stream, BATCH) for stream in STREAMS} == manifests
    assert lake.read_bytes(state_path) == state
    table = lake.delta_table(table_path)
    assert table.version() == committed["version"]
    assert table.to_pyarrow_table().num_rows == 1_000
    debris = batch_files(lake, "users") - published
    if lake.scheme == "file":
        assert debris, "the killed attempt's files stay, referenced by nothing"
    else:
        assert not debris, "on S3 an unfinished upload is no object"

    assert synced(case.root, 2_000) == 2_000
    assert read_manifest(lake, "faker", "users", BATCH)["landed"] == 2_000
    assert not debris & batch_files(lake, "users"), "the retry removed the killed attempt's files"
    for stream in STREAMS:
        landed = set(landed_files(lake, "faker", stream, BATCH))
        stream_table = bronze_table_path(lake, "faker", stream)
        referenced = {f"{stream_table}/{path}" for path in referenced_files(lake, stream_table, BATCH)}
        assert batch_files(lake, stream) == landed | referenced
    assert commit_batch("faker", users, BATCH, lake)["rows"] == 2_000
    assert lake.delta_table(table_path).to_pyarrow_table().num_rows == 2_000
