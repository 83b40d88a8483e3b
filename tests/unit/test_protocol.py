"""Running connectors: real source-faker for the happy path, scripted ones for failures."""

from __future__ import annotations

import stat
import textwrap
from pathlib import Path

import pytest

from sluice.core import config
from sluice.ingest.local.protocol import ConnectorError, configured_catalog, connector_executable, discover, read


def fake_connector(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name / "bin" / name
    path.parent.mkdir(parents=True)
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_missing_connector_says_how_to_install_it(tmp_path):
    with pytest.raises(ConnectorError, match="make connectors"):
        connector_executable("source-nope", tmp_path)


def test_non_zero_exit_raises_with_the_connectors_stderr(tmp_path):
    exe = fake_connector(tmp_path, "source-broken", "echo 'bad credentials for api' >&2\nexit 3\n")
    with pytest.raises(ConnectorError, match="exit 3.*bad credentials for api"):
        list(read(exe, {}, {"streams": []}))


def test_error_trace_raises_even_with_exit_zero(tmp_path):
    exe = fake_connector(
        tmp_path,
        "source-trace",
        """echo '{"type":"TRACE","trace":{"type":"ERROR","error":{"message":"quota exceeded"}}}'\n""",
    )
    with pytest.raises(ConnectorError, match="quota exceeded"):
        list(read(exe, {}, {"streams": []}))


def test_non_json_lines_are_skipped(tmp_path):
    exe = fake_connector(
        tmp_path,
        "source-chatty",
        """echo 'hello from a print statement'\necho '{"type":"RECORD","record":{"stream":"s","data":{}}}'\n""",
    )
    assert [m["type"] for m in read(exe, {}, {"streams": []})] == ["RECORD"]


def test_source_faker_discovers_and_reads_incrementally():
    exe = connector_executable("source-faker", config.connectors_dir())
    conf = {"count": 5, "seed": 1, "parallelism": 1, "always_updated": False}
    catalog = configured_catalog(discover(exe, conf), {"users": "updated_at"})
    assert catalog["streams"][0]["sync_mode"] == "incremental"
    first = list(read(exe, conf, catalog))
    records = [m for m in first if m["type"] == "RECORD"]
    states = [m["state"] for m in first if m["type"] == "STATE"]
    assert len(records) == 5 and states
    again = list(read(exe, conf, catalog, state=[states[-1]]))
    assert not [m for m in again if m["type"] == "RECORD"]  # the saved state is honoured


def test_unknown_stream_is_a_clear_error():
    with pytest.raises(ConnectorError, match=r"\['nope'\] are not in the connector's catalog"):
        configured_catalog({"streams": [{"name": "users"}]}, {"nope": None})
