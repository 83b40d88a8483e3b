"""Faults of the files driver's lake: the store going away mid-batch, two runs of one
batch at once (on a folder and on S3). Each ends in a clear error or in the batch landed once; nothing half-landed
is ever visible, and no file is marked taken by a batch that did not publish."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pyarrow.compute as pc
import pytest

from faultproxy import proxy_before
from files_inbox import BATCH, LATER, Inbox
from s3servers import use_bucket
from sluice.ingest.commit import commit_batch
from sluice.ingest.files import batch as files_batch
from sluice.ingest.files import readers
from sluice.ingest.files.ledger import taken_by_others
from sluice.ingest.landing import manifest_path, read_manifest
from sluice.lake.files import BATCH_COLUMN, bronze_table
from sluice.lake.storage import LakeAccessError, open_lake

EARLIER = "20261119T180000Z"
JSONL = {"format": "jsonl", "record_key": "id"}
#: the batch's files: 300 records and one line that is not JSON
FILES = {
    "a.jsonl": "".join(f'{{"id": {i}, "n": "a{i}"}}\n' for i in range(100)) + '{"id": 100, "n": \n',
    "b.jsonl": "".join(f'{{"id": {i}, "n": "b{i}"}}\n' for i in range(100, 200)),
    "c.jsonl": "".join(f'{{"id": {i}, "n": "c{i}"}}\n' for i in range(200, 300)),
}


@pytest.fixture
def proxy(moto_s3):
    with proxy_before(moto_s3.endpoint) as proxy:
        yield proxy


@pytest.fixture
def inbox(tmp_path, monkeypatch, moto_s3, proxy):
    """The files source ``co`` on an S3 lake reached through ``proxy``, one batch of it
    (``EARLIER``) landed and committed, the files of ``BATCH`` in its inbox."""
    root = use_bucket(moto_s3, monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    monkeypatch.setenv("SLUICE_S3_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("SLUICE_S3_CONNECT_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("SLUICE_S3_REQUEST_TIMEOUT_SECONDS", "5")
    monkeypatch.setattr(readers, "BLOCK_BYTES", 512)  # a file is read in several requests
    inbox = Inbox(tmp_path, monkeypatch, {"s": JSONL}, lake=open_lake(root))
    inbox.drop("s", "earlier.jsonl", '{"id": 1000}\n{"id": 1001}\n')
    inbox.land(EARLIER)
    commit_batch("co", inbox.source().stream("s"), EARLIER, inbox.lake)
    for name, text in FILES.items():
        inbox.drop("s", name, text)
    return inbox


def bronze_rows(inbox: Inbox, batch: str) -> list[int]:
    table = bronze_table(inbox.lake, "co", "s").to_pyarrow_dataset().to_table(filter=pc.field(BATCH_COLUMN) == batch)
    return sorted(table.column("id").to_pylist())


def down_after_the_listing(proxy, monkeypatch):
    def listed(*args):
        files = listed.original(*args)
        proxy.drop()  # for good: the next request (the ledger, a hash) fails
        return files

    listed.original = files_batch.list_inbox
    monkeypatch.setattr(files_batch, "list_inbox", listed)


def down_while_the_first_file_is_hashed(proxy, monkeypatch):
    original = files_batch.sha256_of

    def sha256_of(lake, path):
        if path.endswith("a.jsonl"):
            proxy.drop()
        try:
            return original(lake, path)
        finally:
            proxy.mode = "forward"  # a short outage: back for the next file

    monkeypatch.setattr(files_batch, "sha256_of", sha256_of)


def down_in_the_middle_of_a_file_while_it_lands(proxy, monkeypatch):
    original_land, original_records = files_batch._Stream.land, files_batch._Stream.records
    landing = []

    def land(self, *args):
        landing.append(True)
        return original_land(self, *args)

    def records(self, entry):
        items = original_records(self, entry)
        if not landing or not entry["path"].endswith("b.jsonl"):
            yield from items
            return
        yield next(items)
        proxy.drop()  # after the first block of b.jsonl
        try:
            yield from items
        finally:
            proxy.mode = "forward"

    monkeypatch.setattr(files_batch._Stream, "land", land)
    monkeypatch.setattr(files_batch._Stream, "records", records)


def down_while_the_data_files_upload(proxy, monkeypatch):
    from sluice.ingest.landing import BatchLanding

    original = BatchLanding.publish

    def publish(self, *args, **kwargs):
        proxy.drop()
        try:
            return original(self, *args, **kwargs)
        finally:
            proxy.mode = "forward"  # back before the failed attempt removes its files

    monkeypatch.setattr(BatchLanding, "publish", publish)


def down_when_the_manifest_is_written(proxy, monkeypatch):
    from sluice.ingest import landing

    original = landing.write_manifest

    def write_manifest(lake, manifest):
        proxy.drop()
        try:
            return original(lake, manifest)
        finally:
            proxy.mode = "forward"

    monkeypatch.setattr(landing, "write_manifest", write_manifest)


OUTAGES = {
    "after the listing": down_after_the_listing,
    "while the first file is hashed": down_while_the_first_file_is_hashed,
    "in the middle of a file while it lands": down_in_the_middle_of_a_file_while_it_lands,
    "while the data files upload": down_while_the_data_files_upload,
    "when the manifest is written": down_when_the_manifest_is_written,
}


@pytest.mark.parametrize("outage", OUTAGES.values(), ids=OUTAGES.keys())
def test_the_store_going_away_mid_batch_fails_it_clearly_and_the_retry_lands_every_file_once(
    outage, inbox, proxy, monkeypatch
):
    lake = inbox.lake
    version = bronze_table(lake, "co", "s").version()
    earlier = read_manifest(lake, "co", "s", EARLIER)
    with monkeypatch.context() as patch:
        outage(proxy, patch)
        with pytest.raises(LakeAccessError, match=re.escape(lake.uri(lake.root))) as failed:
            inbox.land(BATCH)
    proxy.mode = "forward"
    assert "failed" in str(failed.value)

    assert not lake.exists(manifest_path(lake, "co", "s", BATCH)), "nothing published"
    assert read_manifest(lake, "co", "s", EARLIER) == earlier
    assert bronze_table(lake, "co", "s").version() == version
    taken = [entry["path"] for entry in taken_by_others(lake, "co", "s", LATER)]
    assert taken == ["inbox/co/s/earlier.jsonl"], "no file is marked taken by the failed batch"

    retry = inbox.land(BATCH)["s"]
    assert (retry["read"], retry["landed"], retry["quarantined"]) == (301, 300, 1)
    assert [(e["path"], e["status"]) for e in retry["inputs"]] == [(f"inbox/co/s/{n}", "ingested") for n in FILES]
    assert [row["_sluice_reason"].split(": ")[1] for row in inbox.quarantined("s")] == ["not valid JSON"]
    assert commit_batch("co", inbox.source().stream("s"), BATCH, lake)["rows"] == 300
    assert bronze_rows(inbox, BATCH) == list(range(300))
    assert bronze_rows(inbox, EARLIER) == [1000, 1001]
    assert inbox.land(LATER)["s"]["read"] == 0, "every file was taken once"


#: one run of the batch in a process of its own, like an Airflow task: land, then commit.
#: At ``point`` (start; publish: before the data files close; closed: the data files closed,
#: nothing of the landing published yet) it leaves ``<name>.<point>`` in
#: the barrier folder and waits for the files ``waits`` names; it ends by leaving
#: ``<name>.done``. Prints what landed and committed, or the error.
RUN = """
import json, pathlib, sys, time
from sluice.core.sources import load_source
from sluice.ingest import landing
from sluice.ingest.commit import commit_batch
from sluice.ingest.files.driver import FilesDriver
from sluice.lake.storage import open_lake
name, root, batch, barrier, point, waits = sys.argv[1:]
barrier = pathlib.Path(barrier)

def wait():
    (barrier / f"{name}.{point}").touch()
    deadline = time.time() + 60
    while not all((barrier / other).exists() for other in waits.split(",")):
        assert time.time() < deadline, f"{name} waited for {waits} in vain"
        time.sleep(0.01)

def at(function):
    def waiting(*args, **kwargs):
        wait()
        return function(*args, **kwargs)
    return waiting

def after(function):
    def waiting(*args, **kwargs):
        result = function(*args, **kwargs)
        wait()
        return result
    return waiting

if point == "publish":
    landing.BatchLanding.publish = at(landing.BatchLanding.publish)
elif point == "closed":
    landing._StreamWriter.close = after(landing._StreamWriter.close)
source, lake = load_source("co"), open_lake(root)
if point == "start":
    wait()
report = {}
try:
    manifest = FilesDriver().land(source, batch, lake)["s"]
    report["landed"] = {key: manifest[key] for key in ("read", "landed", "quarantined", "attempt")}
    report["committed"] = commit_batch("co", source.stream("s"), batch, lake)["rows"]
except Exception as error:
    report["error"] = f"{type(error).__name__}: {error}"
(barrier / f"{name}.done").touch()
print(json.dumps(report))
"""

#: how the two runs meet: each run's (point, the files it waits for there)
MEETINGS = {
    # both have written their data files; they close them and publish at the same moment
    "side by side": {"a": ("publish", "a.publish,b.publish"), "b": ("publish", "a.publish,b.publish")},
    # a run starts while the other writes its data files, or once it has closed them, and runs
    # to its end before that one goes on
    "one starts while the other writes": {"a": ("publish", "b.done"), "b": ("start", "a.publish")},
    "one overtakes the other": {"a": ("closed", "b.done"), "b": ("start", "a.closed")},
}


@pytest.fixture(params=["local", "s3"])
def lake_root(request, tmp_path, monkeypatch) -> str:
    if request.param == "local":
        return str(tmp_path / "lake")
    return use_bucket(request.getfixturevalue("moto_s3"), monkeypatch)


@pytest.mark.parametrize("meeting", MEETINGS.values(), ids=MEETINGS.keys())
def test_two_runs_of_one_batch_at_once_land_every_record_once(meeting, lake_root, tmp_path, monkeypatch):
    inbox = Inbox(tmp_path, monkeypatch, {"s": JSONL}, lake=open_lake(lake_root))
    for name, text in FILES.items():
        inbox.drop("s", name, text)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    runs = {
        name: subprocess.Popen(
            [sys.executable, "-c", RUN, name, lake_root, BATCH, str(barrier), point, waits],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name, (point, waits) in meeting.items()
    }
    outputs = {name: run.communicate(timeout=120)[0] for name, run in runs.items()}
    assert [run.returncode for run in runs.values()] == [0, 0], outputs
    reports = {name: json.loads(output.splitlines()[-1]) for name, output in outputs.items()}

    lake = inbox.lake
    published = read_manifest(lake, "co", "s", BATCH)
    assert (published["read"], published["landed"], published["quarantined"]) == (301, 300, 1)
    for report in reports.values():  # each run landed and committed the batch whole, or failed saying why
        assert report.get("committed") == 300 or "another run of the batch started meanwhile" in report["error"]
    assert any("error" not in report for report in reports.values()), reports
    # what the batch's manifest names is there, and is what the bronze table holds
    assert all(lake.exists(lake.path(name)) for name in published["files"]), published["files"]
    assert commit_batch("co", inbox.source().stream("s"), BATCH, lake)["rows"] == 300
    assert bronze_rows(inbox, BATCH) == list(range(300))
    assert inbox.land(LATER)["s"]["read"] == 0, "no file taken twice"
