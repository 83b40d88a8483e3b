"""Running connectors: real source-faker for the happy path, scripted ones for failures."""

from __future__ import annotations

import json
import stat
import textwrap
from pathlib import Path

import pytest

from sluice.core import config
from sluice.ingest.local.protocol import (
    ConnectorError,
    configured_catalog,
    connector_executable,
    discover,
    read,
    trace_error,
)


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


def test_a_failure_names_the_cause_from_the_traces_internal_message_and_stack_trace(tmp_path):
    """As Airbyte's CDK reports a failed read: a generic message, the cause beside it."""
    trace = {
        "type": "TRACE",
        "trace": {
            "type": "ERROR",
            "emitted_at": 1764633600000,
            "error": {
                "message": "Something went wrong in the connector. See the logs for more details.",
                "internal_message": "Unable to locate credentials",
                "stack_trace": (
                    "Traceback (most recent call last):\n"
                    '  File "/venv/lib/python3.11/site-packages/botocore/auth.py", line 424, in add_auth\n'
                    "    raise NoCredentialsError()\n"
                    "botocore.exceptions.NoCredentialsError: Unable to locate credentials\n"
                ),
                "failure_type": "system_error",
            },
        },
    }
    (tmp_path / "trace.json").write_text(json.dumps(trace) + "\n")
    exe = fake_connector(tmp_path, "source-s3", f"cat {tmp_path / 'trace.json'}\nexit 1\n")
    with pytest.raises(ConnectorError) as raised:
        list(read(exe, {}, {"streams": []}))
    assert str(raised.value) == (
        "source-s3 read failed (exit 1): Something went wrong in the connector. See the logs for more details."
        " (botocore.exceptions.NoCredentialsError: Unable to locate credentials)"
    )


def test_the_cause_of_a_chain_of_exceptions_is_the_first_one():
    """source-s3 without credentials: botocore's error, wrapped by the connector's own."""
    stack_trace = (
        "Traceback (most recent call last):\n"
        '  File "/venv/lib/python3.11/site-packages/source_s3/v4/stream_reader.py", line 150, in get_matching_files\n'
        "    for remote_file in self._page(s3, globs, self.config.bucket, None, seen, logger):\n"
        "botocore.exceptions.NoCredentialsError: Unable to locate credentials\n\n"
        "The above exception was the direct cause of the following exception:\n\n"
        "Traceback (most recent call last):\n"
        '  File "/venv/lib/python3.11/site-packages/source_s3/v4/stream_reader.py", line 167, in _raise_error\n'
        "    raise ErrorListingFiles(\n"
        "airbyte_cdk.sources.file_based.exceptions.ErrorListingFiles: Error listing files.\n"
        "source=s3 bucket=inbox globs=['orders/*.csv'] endpoint=\n"
    )
    error = {
        "message": "An unexpected error occurred in stream orders: ErrorListingFiles",
        "internal_message": "Error listing files.\nsource=s3 bucket=inbox globs=['orders/*.csv'] endpoint=",
        "stack_trace": stack_trace,
    }
    assert trace_error(error) == (
        "An unexpected error occurred in stream orders: ErrorListingFiles (Error listing files. source=s3"
        " bucket=inbox globs=['orders/*.csv'] endpoint=; botocore.exceptions.NoCredentialsError:"
        " Unable to locate credentials)"
    )


def test_trace_error_keeps_an_internal_message_the_stack_trace_does_not_repeat():
    error = {
        "message": "Something went wrong in the connector. See the logs for more details.",
        "internal_message": "stream 'orders': 403 Forbidden",
        "stack_trace": "Traceback (most recent call last):\n  ...\nrequests.exceptions.HTTPError: 403 Client Error\n",
    }
    assert trace_error(error) == (
        "Something went wrong in the connector. See the logs for more details."
        " (stream 'orders': 403 Forbidden; requests.exceptions.HTTPError: 403 Client Error)"
    )
    assert trace_error({"internal_message": "quota exceeded"}) == "quota exceeded"
    assert trace_error({"message": "quota exceeded"}) == "quota exceeded"
