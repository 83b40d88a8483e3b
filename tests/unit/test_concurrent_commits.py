"""Two processes committing to one bronze table on S3 at the same moment both land.

Delta commits on S3 are conditional PUTs of the next log entry: the loser of a race sees
the winner's entry, checks it does not conflict (another batch's partition) and commits
as the next version. Run on radosgw, in separate processes like two Airflow tasks.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from s3servers import use_bucket
from sluice.core.sources import StreamConfig
from sluice.ingest.commit import commit_batch
from sluice.ingest.landing import BatchLanding
from sluice.ingest.schema import stream_schema
from sluice.lake.bronze import bronze_table_path
from sluice.lake.storage import open_lake

pytestmark = pytest.mark.s3
STREAM = StreamConfig("users", record_key="id", subject_key="email")
SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "email": {"type": "string"}}}
COMMIT = """
import sys, time
from sluice.ingest.commit import commit_batch
from sluice.lake.storage import open_lake
from sluice.core.sources import StreamConfig
root, batch, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
stream = StreamConfig("users", record_key="id", subject_key="email")
lake = open_lake(root)
time.sleep(max(0.0, start - time.time()))  # both commit at the same moment
print(commit_batch("demo", stream, batch, lake)["version"])
"""


def land(lake, batch: str, ids: range) -> None:
    landing = BatchLanding(lake, "demo", batch, {"users": (STREAM, stream_schema(SCHEMA))})
    landing.add_all({"stream": "users", "data": {"id": i, "email": f"{i}@x.io"}, "emitted_at": 1} for i in ids)
    landing.publish(state=[])


def commit_at_once(root: str, batches: list[str]) -> list[subprocess.Popen]:
    start = time.time() + 4  # after both interpreters have imported deltalake
    return [
        subprocess.Popen([sys.executable, "-c", COMMIT, root, batch, str(start)], stdout=subprocess.PIPE, text=True)
        for batch in batches
    ]


@pytest.mark.parametrize("table_exists", [False, True], ids=["both-create-the-table", "both-add-a-batch"])
def test_two_concurrent_commits_to_one_table_both_land(radosgw, monkeypatch, table_exists):
    root = use_bucket(radosgw, monkeypatch)
    lake = open_lake(root)
    if table_exists:
        land(lake, "20261120T000000Z", range(0, 10))
        commit_batch("demo", STREAM, "20261120T000000Z", lake)
    batches = ["20261120T060000Z", "20261120T120000Z"]
    for n, batch in enumerate(batches):
        land(lake, batch, range(100 * (n + 1), 100 * (n + 1) + 50))

    procs = commit_at_once(root, batches)
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs

    table = lake.delta_table(bronze_table_path(lake, "demo", "users"))
    partitions = sorted(p["_sluice_batch"] for p in table.partitions())
    assert partitions == (["20261120T000000Z"] if table_exists else []) + batches
    assert table.to_pyarrow_table().num_rows == 100 + (10 if table_exists else 0)
    operations = [entry["operation"] for entry in table.history()]
    assert len(operations) == len(set(entry["version"] for entry in table.history())), "no version written twice"
