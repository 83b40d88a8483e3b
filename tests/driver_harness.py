"""One harness per driver, so the contract suite (tests/unit/test_driver_contract.py) runs the
same tests over every driver. Each harness declares the source ``shop`` (streams ``users``
and ``purchases``, personal data declared) for its driver, scripts what the next sync reads,
spoils it in the driver's own way, and lands a batch through the driver's ``land``, in this
process or in a child process that can be killed half-way."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

USERS = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "email": {"type": ["null", "string"]},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
PURCHASES = {"type": "object", "properties": {"id": {"type": "integer"}, "user_id": {"type": "integer"}}}
STREAMS = (
    "streams:\n"
    "  users: {record_key: id, subject_key: email, identifiers: {email: email, id: user_id}}\n"
    "  purchases: {record_key: id, subject_key: user_id, identifiers: {user_id: user_id}}\n"
)
ROOT = Path(__file__).resolve().parents[1]
LAND = """
import sys
from sluice.core.sources import load_source
from sluice.ingest.drivers import driver_for
from sluice.lake.storage import open_lake
source = load_source("shop")
driver_for(source).land(source, sys.argv[1], open_lake())
"""


def users(count: int) -> list[dict[str, Any]]:
    return [{"id": i, "email": f"u{i}@example.com", "updated_at": "2026-11-20T01:00:00Z"} for i in range(count)]


def purchases(count: int, people: int) -> list[dict[str, Any]]:
    return [{"id": i, "user_id": i % people} for i in range(count)]


class Harness:
    name: str
    lake: Any

    def __init__(self, tmp_path: Path, monkeypatch: Any) -> None:
        self.tmp_path = tmp_path
        include = tmp_path / "include" / "sources"
        include.mkdir(parents=True)
        self.declaration = include / "shop.yml"
        monkeypatch.setenv("SLUICE_INCLUDE_DIR", str(tmp_path / "include"))
        monkeypatch.setenv("SLUICE_DATA_DIR", str(tmp_path / "data"))

    def script(self, records: dict[str, list[dict[str, Any]]]) -> None:
        """What the next sync reads, per stream."""
        raise NotImplementedError

    def spoil(self) -> str:
        """Make the next sync deliver input that cannot be landed; the reason it is kept with."""
        raise NotImplementedError

    def syncs(self) -> int:
        """Reads of the source so far."""
        raise NotImplementedError

    def started(self) -> bool:
        """Whether a landing in a child process has begun reading."""
        raise NotImplementedError

    def slow(self) -> None:
        """Make the next sync take long enough to be killed half-way."""
        raise NotImplementedError

    def source(self) -> Any:
        from sluice.core.sources import load_source

        return load_source("shop")

    def land(self, batch: str) -> dict[str, dict[str, Any]]:
        from sluice.ingest.drivers import driver_for

        source = self.source()
        return driver_for(source).land(source, batch, self.lake)

    def land_and_kill(self, batch: str, timeout: float = 60) -> None:
        """Land ``batch`` in a child process and kill it (SIGKILL) once it has begun reading."""
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT / 'tests'}"}
        child = subprocess.Popen([sys.executable, "-c", LAND, batch], env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            while not self.started():
                if child.poll() is not None:
                    raise AssertionError(f"the landing ended (exit {child.returncode}) before it could be killed")
                if time.monotonic() > deadline:
                    raise AssertionError("the landing did not begin")
                time.sleep(0.02)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        assert child.returncode == -signal.SIGKILL, "the landing finished before it was killed"


CONNECTOR = """#!{python}
import json, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
def emit(message):
    print(json.dumps(message), flush=True)
if sys.argv[1] == "discover":
    emit({{"type": "CATALOG", "catalog": {{"streams": [
        {{"name": "users", "json_schema": {users}, "supported_sync_modes": ["full_refresh"]}},
        {{"name": "purchases", "json_schema": {purchases}, "supported_sync_modes": ["full_refresh"]}}]}}}})
    sys.exit(0)
with open(os.path.join(here, "reads"), "a") as reads:
    reads.write("read\\n")
records = json.load(open(os.path.join(here, "records.json")))
slow = os.path.exists(os.path.join(here, "slow"))
for stream, rows in records.items():
    for row in rows:
        emit({{"type": "RECORD", "record": {{"stream": stream, "data": row, "emitted_at": 1795000000000}}}})
        if slow:
            open(os.path.join(here, "started"), "w").close()
            time.sleep(0.01)
"""


class LocalHarness(Harness):
    """The ``local`` driver with a scripted connector (the Airbyte protocol over stdout)."""

    name = "local"

    def __init__(self, tmp_path: Path, monkeypatch: Any) -> None:
        from sluice.lake.storage import open_lake

        super().__init__(tmp_path, monkeypatch)
        self.declaration.write_text("connector: source-shop\n" + STREAMS)
        self.bin = tmp_path / "connectors" / "source-shop" / "bin"
        self.bin.mkdir(parents=True)
        executable = self.bin / "source-shop"
        executable.write_text(
            CONNECTOR.format(python=sys.executable, users=json.dumps(USERS), purchases=json.dumps(PURCHASES))
        )
        executable.chmod(executable.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("SLUICE_CONNECTORS_DIR", str(tmp_path / "connectors"))
        monkeypatch.setenv("SLUICE_LAKE_ROOT", str(tmp_path / "lake"))
        self.lake = open_lake(str(tmp_path / "lake"))
        self.records: dict[str, list[dict[str, Any]]] = {}

    def script(self, records: dict[str, list[dict[str, Any]]]) -> None:
        self.records = records
        (self.bin / "records.json").write_text(json.dumps(records))
        (self.bin / "slow").unlink(missing_ok=True)
        (self.bin / "started").unlink(missing_ok=True)

    def spoil(self) -> str:
        self.script({**self.records, "users": [*self.records["users"], {"id": "not a number", "email": "x@y.z"}]})
        return "does not fit the stream schema"

    def syncs(self) -> int:
        reads = self.bin / "reads"
        return len(reads.read_text().split()) if reads.exists() else 0

    def slow(self) -> None:
        (self.bin / "slow").touch()

    def started(self) -> bool:
        return (self.bin / "started").exists()


class AirbyteHarness(Harness):
    """The ``airbyte`` driver against the stand-in of Airbyte's API, writing into S3 (moto)."""

    name = "airbyte"

    def __init__(self, tmp_path: Path, monkeypatch: Any, standin: Any, moto_s3: Any) -> None:
        from s3servers import use_bucket
        from sluice.lake.storage import open_lake

        super().__init__(tmp_path, monkeypatch)
        root = use_bucket(moto_s3, monkeypatch)
        monkeypatch.setenv("SLUICE_LAKE_ROOT", root)
        self.lake = open_lake(root)
        self.standin, self.endpoint = standin, moto_s3.endpoint
        self.connection_id = str(uuid.uuid4())
        self.declaration.write_text(
            f"driver: airbyte\nairbyte: {{connection_id: {self.connection_id}, poll_seconds: 0.05}}\n" + STREAMS
        )
        host = {"conn_type": "airbyte", "host": standin.url, "login": "sluice", "password": "secret"}
        monkeypatch.setenv("AIRFLOW_CONN_AIRBYTE_DEFAULT", json.dumps({**host, "extra": {"retries": 4}}))
        standin.setup(client_id="sluice", client_secret="secret", status_seconds=0.05)
        self.records: dict[str, list[dict[str, Any]]] = {}

    def _connection(self, **overrides: Any) -> None:
        bucket, prefix = self.lake.root.split("/", 1)
        configuration = {
            "s3_bucket_name": bucket,
            "s3_bucket_path": f"{prefix}/bronze",
            "s3_path_format": "${NAMESPACE}/${STREAM_NAME}/airbyte/${YEAR}_${MONTH}_${DAY}_${EPOCH}_",
            "s3_endpoint": self.endpoint,
            "format": {"format_type": "Parquet"},
        }
        schemas = {"users": USERS, "purchases": PURCHASES}
        connection = {
            "destination": {
                "destinationId": str(uuid.uuid4()),
                "destinationType": "s3",
                "configuration": configuration,
            },
            "namespaceFormat": "shop",
            "streams": {name: {"schema": schemas[name], "records": rows} for name, rows in self.records.items()},
            **overrides,
        }
        self.standin.setup(connections={self.connection_id: connection})

    def script(self, records: dict[str, list[dict[str, Any]]]) -> None:
        self.records = records
        self._connection()

    def spoil(self) -> str:
        self._connection(bad_file="purchases")
        return "not Parquet"

    def syncs(self) -> int:
        return len([job for job in self.standin.jobs if job["connectionId"] == self.connection_id])

    def slow(self) -> None:
        self._connection(statuses=["pending"] + ["running"] * 400)  # 20 s of running at 0.05 s a status

    def started(self) -> bool:  # the sync runs: the child waits for it
        return self.syncs() > 0


class FilesHarness(Harness):
    """The ``files`` driver over files dropped in the lake's inbox: users as JSON Lines,
    purchases as one JSON array."""

    name = "files"

    def __init__(self, tmp_path: Path, monkeypatch: Any) -> None:
        from sluice.lake.storage import open_lake

        super().__init__(tmp_path, monkeypatch)
        self.declaration.write_text(
            "driver: files\n"
            + STREAMS.replace("users: {", "users: {format: jsonl, pattern: '*.jsonl', ").replace(
                "purchases: {", "purchases: {format: json, "
            )
        )
        monkeypatch.setenv("SLUICE_LAKE_ROOT", str(tmp_path / "lake"))
        self.lake = open_lake(str(tmp_path / "lake"))
        self.inbox = tmp_path / "lake" / "inbox" / "shop"
        self.records: dict[str, list[dict[str, Any]]] = {}

    def script(self, records: dict[str, list[dict[str, Any]]], users_tail: str = "") -> None:
        import shutil

        self.records = records
        shutil.rmtree(self.inbox, ignore_errors=True)
        for stream in ("users", "purchases"):
            (self.inbox / stream).mkdir(parents=True)
        lines = "".join(json.dumps(row) + "\n" for row in records["users"])
        (self.inbox / "users" / "users.jsonl").write_text(lines + users_tail)
        (self.inbox / "purchases" / "purchases.json").write_text(json.dumps(records["purchases"]))

    def spoil(self) -> str:
        self.script(self.records, users_tail='{"id": 99, "email": "trunc')
        return "not valid JSON"

    def syncs(self) -> int:
        return 0  # files are read where they lie: nothing is asked of a source

    def slow(self) -> None:
        self.script({**self.records, "users": users(300_000)})

    def started(self) -> bool:  # the landing has begun writing the users' Parquet
        return any((self.tmp_path / "lake" / "bronze" / "shop" / "users").glob("_sluice_batch=*/*.parquet"))
