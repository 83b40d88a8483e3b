"""A task killed while landing leaves nothing half-written visible, and the retry succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sluice.ingest.landing import read_manifest

BATCH = "20261120T060000Z"
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


def test_kill_mid_landing_then_retry(lake_root):
    tmp = lake_root / "landing" / "faker" / "_tmp"
    proc = sync(lake_root, 50_000)
    deadline = time.monotonic() + 60
    # wait until the attempt has started writing under _tmp, then give the connector a second
    while not list(tmp.glob(f"{BATCH}-*/landing/users")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    assert proc.poll() is None, "the sync finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the task and its connector, like a lost worker
    proc.wait()

    for stream in ("users", "products", "purchases"):
        assert not (lake_root / "landing" / "faker" / stream / f"batch={BATCH}").exists()
    assert not list((lake_root / "state" / "faker").glob("batch=*.json")), "no state saved for the batch"
    assert list(tmp.iterdir()), "the killed attempt's files stay in _tmp, out of sight"

    retry = sync(lake_root, 2_000)
    out, _ = retry.communicate(timeout=120)
    assert retry.returncode == 0
    assert int(out.strip()) == 2_000
    assert read_manifest(lake_root, "faker", "users", BATCH)["landed"] == 2_000
    assert not list(tmp.iterdir()), "the retry cleared the killed attempt's leftovers"
