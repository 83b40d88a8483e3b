"""Test set-up: an isolated Airflow home and data folder for the whole session.

The environment is fixed before anything imports Airflow, which reads it at import.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from environment import ROOT, VENV_BIN, isolated_environment
from fakesnow_db import new_database
from s3servers import start_moto, start_radosgw, use_bucket
from slack_receiver import SlackReceiver

SESSION_DIR = Path(tempfile.mkdtemp(prefix="sluice-tests-"))
os.environ.update(isolated_environment(SESSION_DIR / "airflow", SESSION_DIR / "data"))
sys.path.insert(0, str(ROOT / "plugins"))
#: pytest-xdist's worker (gw0, gw1, ...), None in a run without workers. Each worker has its
#: own SESSION_DIR (Airflow home, servers); RUN_DIR, the first process's (the xdist
#: controller's, whose environment the workers inherit), is shared by every process of the run.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
RUN_DIR = Path(os.environ.setdefault("SLUICE_TESTS_RUN_DIR", str(SESSION_DIR)))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The session's Airflow home with a migrated metadata DB and the platform's pools."""
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run([VENV_BIN / "airflow", "db", "migrate"], check=True, capture_output=True)
    subprocess.run(
        [VENV_BIN / "airflow", "pools", "import", ROOT / "include" / "airflow" / "pools.json"],
        check=True,
        capture_output=True,
    )
    return home


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def local_lake(lake_root: Path):
    from sluice.lake.storage import open_lake

    return open_lake(str(lake_root))


@pytest.fixture(scope="session")
def moto_s3():
    """moto's S3 server, for fast unit tests of the lake on S3."""
    server = start_moto()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def radosgw():
    """One Ceph radosgw S3 server for the session (include/scripts/s3.sh)."""
    server = start_radosgw(SESSION_DIR / "s3")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fakesnow_server() -> dict:
    """A fakesnow server (Snowflake's SQL on DuckDB) for the session: connection arguments."""
    import warnings

    import fakesnow

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the connector warns about its vendored requests
        with fakesnow.server() as kwargs:
            yield kwargs


@dataclass(frozen=True)
class PostgresServer:
    """A PostgreSQL server listening on a unix socket in ``folder``; database and user ``airflow``."""

    folder: Path
    url: str  # SQLAlchemy's


@pytest.fixture(scope="session")
def postgres() -> PostgresServer:
    """One PostgreSQL server for the session (include/scripts/postgres.sh)."""
    script = ROOT / "include" / "scripts" / "postgres.sh"
    folder = Path(tempfile.mkdtemp(prefix="sluice-pg-"))
    try:
        started = subprocess.run(["bash", script, "start", folder], capture_output=True, text=True, timeout=120)
        if started.returncode != 0:
            pytest.fail(f"PostgreSQL did not start: {started.stderr}")
        yield PostgresServer(folder, started.stdout.strip())
    finally:
        subprocess.run(["bash", script, "stop", folder], capture_output=True, timeout=90)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def snowflake(fakesnow_server):
    """A connection to a new database with the BRONZE schema and the SLUICE_LAKE stage."""
    import snowflake.connector

    connection = snowflake.connector.connect(**fakesnow_server, database=new_database(fakesnow_server), schema="BRONZE")
    yield connection
    connection.close()


@pytest.fixture(params=["local", "s3"])
def lake(request: pytest.FixtureRequest, lake_root: Path, monkeypatch: pytest.MonkeyPatch):
    """The lake in a folder, then on S3 (moto): the same test over both."""
    from sluice.lake.storage import open_lake

    if request.param == "local":
        return open_lake(str(lake_root))
    return open_lake(use_bucket(request.getfixturevalue("moto_s3"), monkeypatch))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the slow Airflow 2.11 backfill early, so it overlaps the rest of the suite: in
    one process of the run (the first worker), for whichever worker runs its test."""
    if session.config.option.collectonly or WORKER not in (None, "gw0"):
        return
    if any(item.get_closest_marker("airflow2") for item in session.items):
        from e2e import airflow2

        airflow2.start(RUN_DIR / "airflow2")
    if any(item.get_closest_marker("one_day") for item in session.items):
        from e2e import one_day

        (RUN_DIR / "one-day.pid").write_text(str(one_day.start_in_background(RUN_DIR).pid))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The run's last process to finish (the xdist controller, or the only process) stops it."""
    if hasattr(session.config, "workerinput"):
        return
    from e2e.airflow2 import Backfill

    backfill = Backfill.load(RUN_DIR / "airflow2")
    if backfill is not None:
        backfill.stop()
    day = RUN_DIR / "one-day.pid"
    if day.exists():  # a run whose tests never waited for the day
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(day.read_text()), signal.SIGTERM)


@pytest.fixture(scope="session")
def airflow2_backfill():
    """The background Airflow 2.11 backfill (started at collection), to wait for."""
    from e2e.airflow2 import Backfill

    deadline = time.monotonic() + 60  # the first worker may still be starting it
    while (backfill := Backfill.load(RUN_DIR / "airflow2")) is None and WORKER and time.monotonic() < deadline:
        time.sleep(0.5)
    if backfill is None:
        pytest.fail("the Airflow 2.11 backfill was not started: mark the test with @pytest.mark.airflow2")
    return backfill


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch):
    """A Slack webhook on loopback (:class:`SlackReceiver`), configured as the webhook connection ``slack_alerts``."""
    for var in ("SLUICE_SLACK_CONN_ID", "SLUICE_SLACK_CHANNEL", "SLUICE_SLACK_OWNER", "SLUICE_SLACK_TIMEOUT_SECONDS"):
        monkeypatch.delenv(var, raising=False)
    receiver = SlackReceiver()
    connection = {"conn_type": "slackwebhook", "password": receiver.url}
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(connection))
    yield receiver
    receiver.stop()
