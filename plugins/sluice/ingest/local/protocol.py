"""Run an Airbyte source connector locally through the Airbyte protocol.

A connector installed from PyPI is a command that speaks the protocol on stdout:
``spec``, ``check --config``, ``discover --config`` and ``read --config --catalog
[--state]``, one JSON message per line. This module starts it, streams its messages and
turns its failures into errors that say what went wrong.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sluice.core import config


class ConnectorError(RuntimeError):
    """The connector is missing, exited non-zero or reported an error trace."""


def connector_executable(connector: str, connectors_dir: Path | None = None) -> Path:
    """Path of ``<connectors_dir>/<connector>/bin/<connector>``; it must exist."""
    path = (connectors_dir or config.connectors_dir()) / connector / "bin" / connector
    if not path.is_file():
        raise ConnectorError(
            f"connector {connector!r} is not installed at {path}; "
            f"install it with `make connectors` (one virtualenv per connector)"
        )
    return path


@contextmanager
def _files(**documents: Any) -> Iterator[dict[str, str]]:
    """Write JSON documents to a private temp folder (config may hold secrets)."""
    with tempfile.TemporaryDirectory(prefix="sluice-airbyte-") as tmp:
        os.chmod(tmp, 0o700)
        paths = {}
        for name, document in documents.items():
            path = Path(tmp) / f"{name}.json"
            path.write_text(json.dumps(document))
            paths[name] = str(path)
        yield paths


#: An exception line of a Python traceback: ``botocore.exceptions.NoCredentialsError: ...``.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(: |$)")
#: What Python prints between the exceptions of a chain, the first (the cause) on top.
_CHAINED = re.compile(
    r"^(The above exception was the direct cause of the following exception:"
    r"|During handling of the above exception, another exception occurred:)$",
    re.MULTILINE,
)
_MAX_DETAIL = 1000


def _one_line(text: str) -> str:
    return " ".join(text.split())[:_MAX_DETAIL]


def _root_exception(stack_trace: str) -> str:
    """The exception a traceback starts from (its type and message), or ``""``: the only
    one, or the first of a chain (``raise ... from``), the cause the others wrap."""
    lines = _CHAINED.split(stack_trace)[0].rstrip().splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if _EXCEPTION_LINE.match(lines[index]) and not lines[index].startswith("Traceback"):
            return _one_line(" ".join(lines[index:]))
    return ""


def trace_error(error: Mapping[str, Any]) -> str:
    """An ERROR trace in words: the connector's message and what caused it.

    The message is written for people and is often generic ("Something went wrong in the
    connector"); the cause is in ``internal_message`` and in the exception at the root of
    ``stack_trace`` (Airbyte's CDK formats the original exception there, e.g. botocore's
    ``NoCredentialsError`` under the connector's own "Error listing files").
    """
    message = _one_line(error.get("message") or "")
    internal = _one_line(error.get("internal_message") or "")
    root = _root_exception(error.get("stack_trace") or "")
    details = [detail for detail in (internal, root) if detail and detail not in message]
    if internal and internal in root:
        details.remove(internal)
    if not message:
        return "; ".join(details) or json.dumps(error)[:_MAX_DETAIL]
    return f"{message} ({'; '.join(details)})" if details else message


def run_command(executable: Path, args: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Start the connector and yield its parsed messages as they arrive.

    Lines that are not JSON (stray prints) are skipped, as the Airbyte platform does.
    A non-zero exit or an ERROR trace raises :class:`ConnectorError` with the
    connector's own words.
    """
    stderr_tail: deque[str] = deque(maxlen=40)
    errors: list[str] = []
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(
            [str(executable), *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            bufsize=1 << 20,
        )
        try:
            loads = json.loads
            for line in proc.stdout:
                if not line.startswith(b"{"):
                    continue
                try:
                    message = loads(line)
                except ValueError:
                    continue
                if message.get("type") == "TRACE":
                    trace = message.get("trace") or {}
                    if trace.get("type") == "ERROR":
                        errors.append(trace_error(trace.get("error") or {}))
                yield message
        finally:
            if proc.poll() is None:
                proc.kill()
            returncode = proc.wait()
        stderr.seek(0)
        stderr_tail.extend(stderr.read().splitlines())
    if returncode != 0 or errors:
        detail = "; ".join(errors) or "\n".join(stderr_tail) or "no output"
        raise ConnectorError(f"{executable.name} {args[0]} failed (exit {returncode}): {detail}")


def discover(executable: Path, connector_config: Mapping[str, Any]) -> dict[str, Any]:
    """Return the connector's catalog: ``{"streams": [...]}``."""
    with _files(config=connector_config) as paths:
        for message in run_command(executable, ["discover", "--config", paths["config"]]):
            if message.get("type") == "CATALOG":
                return message["catalog"]
    raise ConnectorError(f"{executable.name} discover printed no CATALOG message")


def configured_catalog(catalog: Mapping[str, Any], streams: Mapping[str, str | None]) -> dict[str, Any]:
    """Select ``streams`` (name -> cursor field) from a discovered catalog.

    A stream is read incrementally when the connector supports it, else in full.
    """
    available = {stream["name"]: stream for stream in catalog.get("streams", [])}
    unknown = sorted(set(streams) - set(available))
    if unknown:
        raise ConnectorError(f"streams {unknown} are not in the connector's catalog {sorted(available)}")
    configured = []
    for name, cursor in streams.items():
        stream = available[name]
        incremental = "incremental" in stream.get("supported_sync_modes", [])
        entry: dict[str, Any] = {
            "stream": stream,
            "sync_mode": "incremental" if incremental else "full_refresh",
            "destination_sync_mode": "append",
        }
        cursor_field = [cursor] if cursor else stream.get("default_cursor_field")
        if incremental and cursor_field:
            entry["cursor_field"] = cursor_field
        configured.append(entry)
    return {"streams": configured}


def read(
    executable: Path,
    connector_config: Mapping[str, Any],
    catalog: Mapping[str, Any],
    state: Sequence[Mapping[str, Any]] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the messages of ``read``, resuming from ``state`` when given."""
    documents: dict[str, Any] = {"config": connector_config, "catalog": catalog}
    if state:
        documents["state"] = list(state)
    with _files(**documents) as paths:
        args = ["read", "--config", paths["config"], "--catalog", paths["catalog"]]
        if state:
            args += ["--state", paths["state"]]
        yield from run_command(executable, args)
