"""Faults between the load and Snowflake, through the real connector and the provider's hook.

A fakesnow server behind a TCP proxy plays a warehouse that stops answering; a login
stand-in plays Snowflake refusing credentials (fakesnow accepts any).
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_snowflake_load import B1, land_and_commit, rows

from fakesnow_db import airflow_connection
from faultproxy import FaultProxy
from sluice.warehouse import snowflake_load
from sluice.warehouse.snowflake_hook import SluiceSnowflakeHook, WarehouseAccessError, snowflake_connection
from sluice.warehouse.snowflake_load import SnowflakeLoadError, load_batch


@pytest.fixture
def proxy(fakesnow_server):
    proxy = FaultProxy(fakesnow_server["host"], fakesnow_server["port"])
    yield proxy
    proxy.close()


def hook(monkeypatch, server: dict, database: str, **extra) -> SluiceSnowflakeHook:
    monkeypatch.setenv("AIRFLOW_CONN_SNOWFLAKE_FAULTS", json.dumps(airflow_connection(server, database, **extra)))
    return SluiceSnowflakeHook(snowflake_conn_id="snowflake_faults")


@pytest.mark.parametrize("statement", ["PUT", "MERGE INTO"])
def test_a_warehouse_that_stops_answering_fails_the_load_and_the_retry_completes_it(
    statement, local_lake, fakesnow_server, snowflake, proxy, monkeypatch
):
    database = snowflake.database
    land_and_commit(local_lake, B1, [1, 2])
    load_batch("demo", "users", B1, snowflake, local_lake)
    land_and_commit(local_lake, B1, [1, 2, 3])  # the rerun to load

    query = snowflake_load._query

    def stall_at(cursor, sql, params=()):
        if sql.startswith(statement) and proxy.mode == "forward" and not retrying:
            proxy.mode = "stall"  # the warehouse stops answering as this statement goes out
        return query(cursor, sql, params)

    retrying = False
    monkeypatch.setattr(snowflake_load, "_query", stall_at)
    through_proxy = hook(monkeypatch, fakesnow_server, database, port=proxy.port, network_timeout=2, socket_timeout=1)
    connection = through_proxy.get_conn()
    started = time.monotonic()
    with pytest.raises(SnowflakeLoadError, match=f"demo.users batch {B1} into .*: {statement}.* failed") as failure:
        load_batch("demo", "users", B1, connection, local_lake)
    took = time.monotonic() - started
    print(f"{statement}: failed after {took:.1f} s: {failure.value}")
    assert took < 60, "the connector's timeouts from the connection's extras bounded the wait"
    assert rows(snowflake, f"SELECT count(*) FROM demo__users WHERE _sluice_batch = '{B1}'") == [(2,)]

    proxy.mode, retrying = "forward", True
    connection = through_proxy.get_conn()
    assert load_batch("demo", "users", B1, connection, local_lake)["rows"] == 3
    assert rows(snowflake, "SELECT id FROM demo__users ORDER BY id") == [(1,), (2,), (3,)]


class RefusingLogin(BaseHTTPRequestHandler):
    """Answers a login as Snowflake does for a wrong password (HTTP 200, code 390100)."""

    received: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":  # as the connector sends it
            body = gzip.decompress(body)
        body = json.loads(body)
        RefusingLogin.received.append({"path": self.path.split("?")[0], "data": body["data"]})
        answer = {
            "data": {"nextAction": "RETRY_LOGIN", "authnMethod": "USERNAME_PASSWORD", "signInOptions": {}},
            "code": "390100",
            "message": "Incorrect username or password was specified.",
            "success": False,
            "headers": None,
        }
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


def test_a_refused_login_names_the_connection_and_snowflakes_reason(fakesnow_server, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingLogin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SLUICE_SNOWFLAKE_CONN_ID", "snowflake_faults")
    hook(monkeypatch, fakesnow_server, "SLUICE", port=server.server_port, login_timeout=10)
    try:
        with pytest.raises(WarehouseAccessError) as refused:
            snowflake_connection()
    finally:
        server.shutdown()
    message = str(refused.value)
    assert "Airflow connection 'snowflake_faults'" in message
    assert "account fakesnow, user fake" in message
    assert "Incorrect username or password was specified" in message
    assert [request["path"] for request in RefusingLogin.received] == ["/session/v1/login-request"]
    assert RefusingLogin.received[0]["data"]["LOGIN_NAME"] == "fake"


def test_an_unreachable_warehouse_fails_the_login_within_its_timeout(fakesnow_server, proxy, monkeypatch):
    proxy.mode = "refuse"
    monkeypatch.setenv("SLUICE_SNOWFLAKE_CONN_ID", "snowflake_faults")
    hook(monkeypatch, fakesnow_server, "SLUICE", port=proxy.port, login_timeout=5, network_timeout=5)
    started = time.monotonic()
    with pytest.raises(WarehouseAccessError, match="cannot log in to Snowflake through the Airflow connection"):
        snowflake_connection()
    assert time.monotonic() - started < 30
    assert proxy.connections >= 2, "the connector tried again before giving up"
