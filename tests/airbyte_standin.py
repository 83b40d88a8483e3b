"""A stand-in of an Airbyte server's public API (v1), for tests: run as its own process.

It follows the real API where Sluice talks to it: a client-credentials token
(``POST /v1/applications/token``, bearer tokens that expire), ``POST /v1/jobs``,
``GET /v1/jobs/{id}``, ``GET /v1/jobs?connectionId=…``, ``DELETE /v1/jobs/{id}``,
``GET /v1/connections/{id}``, ``GET /v1/destinations/{id}``, ``GET /health``, and of the
configuration API ``POST /api/v1/jobs/get`` (the job with its attempts); errors as
problem JSON with the status codes Airbyte uses (401, 404, 409 for a sync already
running).

A job moves by polls, not by the clock: each ``GET /v1/jobs/{id}`` takes it one step along
its connection's scripted statuses (``pending``, ``queued``, ``running``, …); the poll after
the last step runs its attempts (the job stays ``running`` until they are written), then
it ends ``succeeded`` or ``failed``. Each attempt writes its records where its destination
writes them: Parquet files in the S3 bucket for an ``s3`` destination, tables in
Snowflake for a ``snowflake`` one. The S3 files are what Airbyte's S3 destination
documents: ``<bucket path>/<path format><part id>.parquet``, several parts per stream
(the part id counts up from 0), the metadata columns first with ``_airbyte_extracted_at``
as a UTC timestamp in milliseconds and the job's id as ``_airbyte_meta.sync_id``. An
attempt that fails (``failed_attempts``) leaves the part files it wrote, carrying the same
sync id, as a real retried sync does; the next attempt writes every record again.

Tests script it through ``/_standin/*``: the credentials, the connections (destination,
streams with their records, statuses), faults (the next N requests answered with a
status), and the log of requests received. ``AirbyteStandin`` starts it and wraps that.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TERMINAL = ("succeeded", "failed", "cancelled")
#: Airbyte's destination definition ids
DEFINITIONS = {
    "s3": "4816b78f-1489-44c1-9060-4b19d5fa9362",
    "snowflake": "424892c4-daac-4491-b35d-c6688ba547ba",
}


class AirbyteStandin:
    """The stand-in's process; ``url`` is the API's base (an Airflow connection's host)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__], stdout=subprocess.PIPE, text=True, env=env, bufsize=1
        )
        self.port = int(self._process.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/_standin/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def setup(self, **settings: Any) -> None:
        """``client_id``, ``client_secret``, ``token_seconds`` and ``connections``: id →
        {destination, namespaceFormat, streams: {name: {schema, records, syncMode}},
        statuses (one per poll), outcome, failed_attempts (attempts that write part of
        each stream, then fail), part_rows (rows per part file, default 5), bad_file (a
        stream written as text), rows_reported (a count to report instead of the rows
        written)}."""
        self._call("POST", "setup", settings)

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` API requests with ``status``."""
        self._call("POST", "fail", {"count": count, "status": status})

    def revoke_tokens(self) -> None:
        """Expire every token handed out so far (as a server restart or a rotation does)."""
        self._call("POST", "revoke", {})

    def hold(self, seconds: float) -> None:
        """Let every API request wait ``seconds`` before it is answered (0: none)."""
        self._call("POST", "hold", {"seconds": seconds})

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every API request so far: method, path, status answered."""
        return self._call("GET", "requests")

    @property
    def jobs(self) -> list[dict[str, Any]]:
        return self._call("GET", "jobs")

    def close(self) -> None:
        self._process.kill()
        self._process.wait()


# --- the server (runs in its own process) ---------------------------------------------


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.client_id, self.client_secret = "sluice", "secret"
        self.token_seconds = 180
        self.tokens: dict[str, float] = {}
        self.connections: dict[str, dict[str, Any]] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self.failures: list[int] = []
        self.hold_seconds = 0.0
        self.requests: list[dict[str, Any]] = []


STATE = _State()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _job_status(job: dict[str, Any], poll: bool = False) -> str:
    """The job's status; a poll (``GET /jobs/{id}``) first moves it one step along its
    connection's script, and the poll after the script's end starts its attempts."""
    if job["status"] in TERMINAL or not poll:
        return job["status"]
    connection = STATE.connections[job["connectionId"]]
    script = connection.get("statuses") or ["pending", "running"]
    step = job["_polls"]
    job["_polls"] += 1
    if step < len(script):
        job["status"] = script[step]
        return job["status"]
    outcome = connection.get("outcome", "succeeded")
    if outcome != "succeeded":
        job["status"], job["lastUpdatedAt"] = outcome, _now()
    elif not job.get("_writing"):  # the job runs until its attempts have written
        job["_writing"], job["status"] = True, "running"
        threading.Thread(target=_run_attempts, args=(job, connection), daemon=True).start()
    return job["status"]


def _start_attempt(job: dict[str, Any]) -> dict[str, Any]:
    now = int(time.time())
    attempt = {"id": len(job["_attempts"]), "status": "running", "createdAt": now, "updatedAt": now, "endedAt": None}
    job["_attempts"].append(attempt)
    return attempt


def _end_attempt(attempt: dict[str, Any], status: str, rows: int, size: int) -> None:
    attempt.update(status=status, recordsSynced=rows, bytesSynced=size)
    attempt["totalStats"] = {
        "recordsEmitted": rows,
        "recordsCommitted": rows,
        "bytesEmitted": size,
        "bytesCommitted": size,
    }
    attempt["endedAt"] = attempt["updatedAt"] = int(time.time())


def _run_attempts(job: dict[str, Any], connection: dict[str, Any]) -> None:
    """The failed attempts (each writes the first half of every stream, then fails), then
    the one that writes every record. Attempt times are whole seconds, as Airbyte reports
    them; a new attempt starts in the second after the last one ended (Airbyte starts new
    pods for it), so its records are extracted after that."""
    for _ in range(int(connection.get("failed_attempts", 0))):
        with STATE.lock:
            attempt = _start_attempt(job)
        rows, size = _write_destination(job, connection, half=True)
        with STATE.lock:
            _end_attempt(attempt, "failed", rows, size)
        time.sleep(int(time.time()) + 1.05 - time.time())
    with STATE.lock:
        attempt = _start_attempt(job)
    rows, size = _write_destination(job, connection)
    with STATE.lock:
        _end_attempt(attempt, "succeeded", connection.get("rows_reported", rows), size)
        if job["status"] not in TERMINAL:  # not cancelled meanwhile
            # the last attempt's committed records and bytes, as Airbyte's public API reports
            # them (JobResponseMapper: lastAttempt.totalStats.recordsCommitted)
            job["rowsSynced"] = attempt["totalStats"]["recordsCommitted"]
            job["bytesSynced"] = attempt["totalStats"]["bytesCommitted"]
            job["status"], job["lastUpdatedAt"] = "succeeded", _now()


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in job.items() if not key.startswith("_")}


def _arrow_type(schema: dict[str, Any]) -> Any:
    """The Parquet type Airbyte's S3 destination gives a JSON-schema type."""
    import pyarrow as pa

    kinds = schema.get("type", "string")
    kinds = [kind for kind in (kinds if isinstance(kinds, list) else [kinds]) if kind != "null"] or ["string"]
    kind, form = kinds[0], schema.get("format")
    if kind == "integer":
        return pa.int64()
    if kind == "number":
        return pa.float64()
    if kind == "boolean":
        return pa.bool_()
    if kind == "string" and form == "date-time":
        return pa.timestamp("us", tz="UTC")
    if kind == "string" and form == "date":
        return pa.date32()
    if kind == "object" and schema.get("properties"):  # a record: a Parquet group
        return pa.struct([(name, _arrow_type(spec)) for name, spec in schema["properties"].items()])
    return pa.string()  # free-form objects and arrays as their JSON text


def _value(value: Any, arrow_type: Any) -> Any:
    import pyarrow as pa

    if value is None:
        return None
    if pa.types.is_timestamp(arrow_type):
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if pa.types.is_date32(arrow_type):
        return datetime.fromisoformat(str(value)).date()
    if pa.types.is_struct(arrow_type):
        return {field.name: _value(value.get(field.name), field.type) for field in arrow_type}
    if pa.types.is_string(arrow_type) and not isinstance(value, str):
        return json.dumps(value)
    return value


def _records_table(
    job: dict[str, Any], records: list[dict[str, Any]], stream: dict[str, Any], extracted: datetime
) -> Any:
    import pyarrow as pa

    change = pa.struct([("field", pa.string()), ("change", pa.string()), ("reason", pa.string())])
    meta = pa.struct([("sync_id", pa.int64()), ("changes", pa.list_(change))])
    columns = {name: _arrow_type(spec) for name, spec in stream["schema"].get("properties", {}).items()}
    fields = [
        ("_airbyte_raw_id", pa.string()),
        # Int64(logicalType=Timestamp(Milliseconds)), as the destination's docs say
        ("_airbyte_extracted_at", pa.timestamp("ms", tz="UTC")),
        ("_airbyte_generation_id", pa.int64()),
        ("_airbyte_meta", meta),
        *columns.items(),
    ]
    rows = [
        {
            "_airbyte_raw_id": str(uuid.uuid4()),
            "_airbyte_extracted_at": extracted,
            "_airbyte_generation_id": 0,
            "_airbyte_meta": {"sync_id": job["jobId"], "changes": []},
            **{name: _value(record.get(name), arrow_type) for name, arrow_type in columns.items()},
        }
        for record in records
    ]
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


def _write_destination(job: dict[str, Any], connection: dict[str, Any], half: bool = False) -> tuple[int, int]:
    """One attempt's writes: every stream's records (``half``: the first half of them)."""
    destination = connection["destination"]
    extracted = datetime.now(UTC)
    rows = size = 0
    for name, stream in connection.get("streams", {}).items():
        records = stream["records"][: len(stream["records"]) // 2] if half else stream["records"]
        table = _records_table(job, records, stream, extracted)
        rows += table.num_rows
        if destination["destinationType"] == "s3":
            size += _write_s3(destination["configuration"], connection, name, table, extracted)
        else:
            size += _write_snowflake(destination["configuration"], connection, name, table)
    return rows, size


def _snowflake_type(arrow_type: Any) -> str:
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return "NUMBER(38,0)"
    if pa.types.is_floating(arrow_type):
        return "FLOAT"
    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP_TZ"
    if pa.types.is_date32(arrow_type):
        return "DATE"
    if pa.types.is_struct(arrow_type):
        return "VARIANT"
    return "VARCHAR"


def _write_snowflake(config: dict[str, Any], connection: dict[str, Any], stream: str, table: Any) -> int:
    """Where and how Airbyte's Snowflake destination writes a stream: a table named after
    it (upper case) in the connection's namespace or the destination's schema, with the
    ``_AIRBYTE_*`` columns first and objects as VARIANT; rows are appended. Each record
    is also appended whole, as ``_AIRBYTE_DATA``, to its raw table
    ``<raw_data_schema>.<SCHEMA>_RAW__STREAM_<STREAM>`` (schema ``AIRBYTE_INTERNAL`` unless
    the destination sets another)."""
    import snowflake.connector

    schema = (connection.get("namespaceFormat") or config["schema"]).upper()
    name = f'"{config["database"].upper()}"."{schema}"."{stream.upper()}"'
    columns = [(field.name.upper(), _snowflake_type(field.type)) for field in table.schema]
    server = snowflake.connector.connect(
        account=config.get("account", "standin"),
        user=config["username"],
        password=config["credentials"]["password"],
        host=config["host"],
        port=config.get("port", 443),
        protocol=config.get("protocol", "https"),
        database=config["database"],
    )
    try:
        cursor = server.cursor()
        cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{config["database"].upper()}"."{schema}"')
        definition = ", ".join(f'"{column}" {kind}' for column, kind in columns)
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {name} ({definition})")
        select = ", ".join(
            f"PARSE_JSON(column{i})" if kind == "VARIANT" else f"column{i}::{kind}"
            for i, (_, kind) in enumerate(columns, start=1)
        )
        rows = [
            [
                json.dumps(value, default=str) if kind == "VARIANT" and value is not None else value
                for value, (_, kind) in zip(row.values(), columns, strict=True)
            ]
            for row in table.to_pylist()
        ]
        placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            cursor.execute(
                f"INSERT INTO {name} SELECT {select} FROM VALUES {', '.join([placeholders] * len(chunk))}",
                [value for row in chunk for value in row],
            )
        raw_schema = (config.get("raw_data_schema") or "airbyte_internal").upper()
        raw = f'"{config["database"].upper()}"."{raw_schema}"."{schema}_RAW__STREAM_{stream.upper()}"'
        cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{config["database"].upper()}"."{raw_schema}"')
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {raw} (_AIRBYTE_RAW_ID VARCHAR, _AIRBYTE_EXTRACTED_AT TIMESTAMP_TZ,"
            " _AIRBYTE_LOADED_AT TIMESTAMP_TZ, _AIRBYTE_DATA VARIANT, _AIRBYTE_META VARIANT)"
        )
        for record in table.to_pylist():
            data = {key: value for key, value in record.items() if not key.startswith("_airbyte_")}
            cursor.execute(
                f"INSERT INTO {raw} SELECT %s, %s::TIMESTAMP_TZ, current_timestamp, PARSE_JSON(%s), PARSE_JSON(%s)",
                (
                    record["_airbyte_raw_id"],
                    record["_airbyte_extracted_at"].isoformat(),
                    json.dumps(data, default=str),
                    json.dumps(record["_airbyte_meta"]),
                ),
            )
    finally:
        server.close()
    return table.nbytes


def _write_s3(config: dict[str, Any], connection: dict[str, Any], stream: str, table: Any, now: datetime) -> int:
    """Where and how Airbyte's S3 destination writes a stream: ``<bucket>/<bucket path>/
    <path format><part id>.parquet``, a part per ``part_rows`` rows, the part id counting
    up from 0; ``bad_file`` writes its first part as text instead."""
    import io

    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    path_format = config.get("s3_path_format") or "${NAMESPACE}/${STREAM_NAME}/${YEAR}_${MONTH}_${DAY}_${EPOCH}_"
    variables = {
        "NAMESPACE": connection.get("namespaceFormat", ""),
        "STREAM_NAME": stream,
        "YEAR": f"{now:%Y}",
        "MONTH": f"{now:%m}",
        "DAY": f"{now:%d}",
        "EPOCH": str(int(now.timestamp() * 1000)),
        "UUID": str(uuid.uuid4()),
    }
    prefix = path_format
    for name, value in variables.items():
        prefix = prefix.replace("${" + name + "}", value)
    folder = f"{config['s3_bucket_name']}/{config['s3_bucket_path'].strip('/')}/{prefix}"
    fs = pafs.S3FileSystem(endpoint_override=config.get("s3_endpoint") or None, allow_bucket_creation=False)
    part_rows = int(connection.get("part_rows", 5))
    size = 0
    for part, start in enumerate(range(0, max(table.num_rows, 1), part_rows)):
        buffer = io.BytesIO()
        if connection.get("bad_file") == stream and part == 0:
            buffer.write(b"this is not parquet\n")
        else:
            pq.write_table(table.slice(start, part_rows), buffer)
        with fs.open_output_stream(f"{folder}{part}.parquet") as out:
            out.write(buffer.getvalue())
        size += len(buffer.getvalue())
    return size


def _problem(status: int, title: str, detail: str) -> tuple[int, dict[str, Any]]:
    return status, {
        "type": f"https://reference.airbyte.com/reference/errors#{status}",
        "title": title,
        "status": status,
        "detail": detail,
    }


def _api(method: str, path: str, query: dict[str, list[str]], body: Any, token: str | None) -> tuple[int, Any]:
    if path == "/health":
        return 200, {"available": True}
    if path == "/v1/applications/token" and method == "POST":
        if body.get("client_id") != STATE.client_id or body.get("client_secret") != STATE.client_secret:
            return _problem(401, "unauthorized", "Invalid client credentials")
        access = uuid.uuid4().hex
        STATE.tokens[access] = time.time() + STATE.token_seconds
        return 200, {"access_token": access, "token_type": "Bearer", "expires_in": STATE.token_seconds}
    if token not in STATE.tokens or STATE.tokens[token] < time.time():
        return _problem(401, "unauthorized", "The access token expired or is invalid")
    if path == "/api/v1/jobs/get" and method == "POST":
        return _config_job(body)
    parts = path.strip("/").split("/")[1:]
    if parts[0] == "jobs":
        return _jobs(method, parts[1:], query, body)
    if parts[0] == "connections" and method == "GET" and len(parts) == 2:
        connection = STATE.connections.get(parts[1])
        if connection is None:
            return _problem(404, "resource-not-found", f"Could not find connection with id: {parts[1]}")
        return 200, {
            "connectionId": parts[1],
            "name": connection.get("name", parts[1]),
            "sourceId": connection.get("sourceId", "source"),
            "destinationId": connection["destination"]["destinationId"],
            "workspaceId": "workspace",
            "status": "active",
            "namespaceDefinition": connection.get("namespaceDefinition", "custom_format"),
            "namespaceFormat": connection.get("namespaceFormat", ""),
            "schedule": {"scheduleType": "manual"},
            "configurations": {
                "streams": [
                    {"name": name, "syncMode": stream.get("syncMode", "incremental_append")}
                    for name, stream in connection.get("streams", {}).items()
                ]
            },
            "tags": [],
            "createdAt": 0,
        }
    if parts[0] == "destinations" and method == "GET" and len(parts) == 2:
        for connection in STATE.connections.values():
            destination = connection["destination"]
            if destination["destinationId"] == parts[1]:
                return 200, {
                    "name": destination.get("name", parts[1]),
                    "workspaceId": "workspace",
                    "definitionId": DEFINITIONS[destination["destinationType"]],
                    "createdAt": 0,
                    **destination,
                    "configuration": {
                        "destinationType": destination["destinationType"],
                        **destination["configuration"],
                    },
                }
        return _problem(404, "resource-not-found", f"Could not find destination with id: {parts[1]}")
    return _problem(404, "not-found", f"{method} {path}")


def _config_job(body: Any) -> tuple[int, Any]:
    """The configuration API's job with its attempts (times in epoch seconds)."""
    job = STATE.jobs.get(int(body.get("id") or 0))
    if job is None:
        return _problem(404, "resource-not-found", f"Could not find job with id: {body.get('id')}")
    read = {"id": job["jobId"], "configType": "sync", "configId": job["connectionId"], "status": job["status"]}
    return 200, {"job": read, "attempts": [{"attempt": dict(a), "logs": {"logLines": []}} for a in job["_attempts"]]}


def _jobs(method: str, parts: list[str], query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
    if not parts and method == "POST":
        connection_id = body.get("connectionId")
        if connection_id not in STATE.connections:
            return _problem(404, "resource-not-found", f"Could not find connection with id: {connection_id}")
        running = [
            job
            for job in STATE.jobs.values()
            if job["connectionId"] == connection_id and _job_status(job) not in TERMINAL
        ]
        if running:
            return _problem(409, "try-again-later", f"A sync is already running for: {connection_id}")
        job_id = len(STATE.jobs) + 1
        STATE.jobs[job_id] = {
            "jobId": job_id,
            "status": "pending",
            "jobType": body.get("jobType", "sync"),
            "startTime": _now(),
            "connectionId": connection_id,
            "lastUpdatedAt": _now(),
            "duration": "PT0S",
            "bytesSynced": 0,
            "rowsSynced": 0,
            "_polls": 0,
            "_attempts": [],
        }
        return 200, _public(STATE.jobs[job_id])
    if not parts and method == "GET":
        jobs = [
            job
            for job in STATE.jobs.values()
            if not query.get("connectionId") or job["connectionId"] == query["connectionId"][0]
        ]
        for job in jobs:
            _job_status(job)
        if query.get("status"):
            jobs = [job for job in jobs if job["status"] == query["status"][0]]
        jobs.sort(key=lambda job: job["jobId"], reverse="DESC" in (query.get("orderBy") or [""])[0])
        return 200, {"data": [_public(job) for job in jobs[: int((query.get("limit") or ["20"])[0])]]}
    job = STATE.jobs.get(int(parts[0])) if parts and parts[0].isdigit() else None
    if job is None:
        return _problem(404, "resource-not-found", f"Could not find job with id: {parts[0] if parts else ''}")
    if method == "GET":
        _job_status(job, poll=True)
        return 200, _public(job)
    if method == "DELETE":
        if _job_status(job) in TERMINAL:
            return _problem(409, "conflict", f"Job {job['jobId']} is already {job['status']}")
        job["status"], job["lastUpdatedAt"] = "cancelled", _now()
        return 200, _public(job)
    return _problem(405, "method-not-allowed", method)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/problem+json" if status >= 400 else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not raw:
            return {}
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return {key: values[0] for key, values in parse_qs(raw.decode()).items()}
        return json.loads(raw)

    def _handle(self, method: str) -> None:
        url = urlparse(self.path)
        body = self._body()
        if url.path.startswith("/_standin/"):
            self._answer(200, _admin(method, url.path.removeprefix("/_standin/"), body))
            return
        time.sleep(STATE.hold_seconds)
        with STATE.lock:
            if STATE.failures:
                status, payload = STATE.failures.pop(0), {"title": "unavailable", "status": 0}
                payload["status"] = status
            else:
                authorization = self.headers.get("Authorization", "")
                token = authorization.removeprefix("Bearer ").strip() or None
                try:
                    status, payload = _api(method, url.path, parse_qs(url.query), body, token)
                except Exception as error:  # a bug of the stand-in: say so
                    status, payload = 500, {"title": "stand-in error", "detail": repr(error)}
            STATE.requests.append({"method": method, "path": url.path, "query": url.query, "status": status})
        self._answer(status, payload)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, *args: Any) -> None:
        pass


def _admin(method: str, path: str, body: Any) -> Any:
    with STATE.lock:
        if path == "setup":
            for key in ("client_id", "client_secret", "token_seconds"):
                if key in body:
                    setattr(STATE, key, body[key])
            STATE.connections.update(body.get("connections", {}))
            return None
        if path == "fail":
            STATE.failures.extend([body["status"]] * body["count"])
            return None
        if path == "revoke":
            STATE.tokens.clear()
            return None
        if path == "hold":
            STATE.hold_seconds = body["seconds"]
            return None
        if path == "requests":
            return STATE.requests
        if path == "jobs":
            return [_public(job) for job in STATE.jobs.values()]
    raise ValueError(path)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    print(server.server_port, flush=True)
    server.serve_forever()
