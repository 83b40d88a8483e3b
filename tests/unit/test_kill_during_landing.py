"""A task killed while landing leaves nothing half-written visible, and the retry succeeds.

The batch was landed and committed once before: the killed relanding must leave that
committed version readable, and its retry must remove what the killed attempt wrote.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from deltalake import DeltaTable

from sluice.ingest.landing import landed_files, read_manifest
from sluice.lake.bronze import bronze_table_path, commit_batch
from sluice.lake.files import referenced_files
from sluice.sources import load_source

BATCH = "20261120T060000Z"
STREAMS = ("users", "products", "purchases")
SYNC = """
import sys
from dataclasses import replace
from pathlib import Path
from sluice.sources import load_source
from sluice.ingest.sync import sync_batch
source = load_source("faker")
source = replace(source, connector_config={**source.connector_config, "count": int(sys.argv[2])})
print(sync_batch(source, sys.argv[3], lake_root=Path(sys.argv[1]))["users"]["landed"], flush=True)
"""


def sync(lake_root: Path, count: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SYNC, str(lake_root), str(count), BATCH],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def synced(lake_root: Path, count: int) -> int:
    proc = sync(lake_root, count)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    return int(out.strip())


def batch_files(lake_root: Path, stream: str) -> set[Path]:
    return set((bronze_table_path(lake_root, "faker", stream) / f"_sluice_batch={BATCH}").iterdir())


def test_kill_mid_landing_then_retry(lake_root):
    users = load_source("faker").stream("users")
    table_path = bronze_table_path(lake_root, "faker", "users")
    assert synced(lake_root, 1_000) == 1_000
    committed = commit_batch("faker", users, BATCH, lake_root)
    manifests = {stream: read_manifest(lake_root, "faker", stream, BATCH) for stream in STREAMS}
    state = (lake_root / "state" / "faker" / f"batch={BATCH}.json").read_text()

    proc = sync(lake_root, 50_000)
    published = set(landed_files(lake_root, "faker", "users", BATCH))
    deadline = time.monotonic() + 60
    # wait until the attempt has started writing its first users file, then kill it mid-file
    while batch_files(lake_root, "users") == published and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert proc.poll() is None, "the sync finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the task and its connector, like a lost worker
    proc.wait()

    # the published landing, the state and the committed version are what they were
    assert {stream: read_manifest(lake_root, "faker", stream, BATCH) for stream in STREAMS} == manifests
    assert (lake_root / "state" / "faker" / f"batch={BATCH}.json").read_text() == state
    table = DeltaTable(str(table_path))
    assert table.version() == committed["version"]
    assert table.to_pyarrow_table().num_rows == 1_000
    debris = batch_files(lake_root, "users") - published
    assert debris, "the killed attempt's files stay, referenced by nothing"

    assert synced(lake_root, 2_000) == 2_000
    assert read_manifest(lake_root, "faker", "users", BATCH)["landed"] == 2_000
    assert not debris & batch_files(lake_root, "users"), "the retry removed the killed attempt's files"
    for stream in STREAMS:
        landed = set(landed_files(lake_root, "faker", stream, BATCH))
        table_root = bronze_table_path(lake_root, "faker", stream)
        referenced = {table_root / path for path in referenced_files(table_root, BATCH)}
        assert batch_files(lake_root, stream) == landed | referenced
    assert commit_batch("faker", users, BATCH, lake_root)["rows"] == 2_000
    assert DeltaTable(str(table_path)).to_pyarrow_table().num_rows == 2_000
