"""Signing in to Snowflake and losing it, through the real connector and the provider's hook.

A fakesnow server behind a TCP proxy plays a warehouse that stops answering. fakesnow
accepts any credentials, so a login stand-in plays Snowflake refusing them: it records
each login request, which shows what the connector (or dbt) signed in with.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_snowflake_load import B1, land_and_commit, rows

from environment import ROOT, VENV_BIN
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


def hook(monkeypatch, server: dict, database: str, password: str | None = "", **extra) -> SluiceSnowflakeHook:
    """The hook of connection ``snowflake_faults`` (also ``SLUICE_SNOWFLAKE_CONN_ID``)."""
    connection = airflow_connection(server, database, **extra)
    if password is None:
        del connection["password"]
    monkeypatch.setenv("AIRFLOW_CONN_SNOWFLAKE_FAULTS", json.dumps(connection))
    monkeypatch.setenv("SLUICE_SNOWFLAKE_CONN_ID", "snowflake_faults")
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

    received: list[dict]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":  # as the connector sends it
            body = gzip.decompress(body)
        self.received.append({"path": self.path.split("?")[0], "data": json.loads(body)["data"]})
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


@pytest.fixture
def login_standin():
    """The stand-in's port and the login requests it received."""
    received: list[dict] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (RefusingLogin,), {"received": received}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, received
    server.shutdown()


def test_a_refused_login_names_the_connection_and_snowflakes_reason(fakesnow_server, login_standin, monkeypatch):
    port, received = login_standin
    hook(monkeypatch, fakesnow_server, "SLUICE", port=port, login_timeout=10)
    with pytest.raises(WarehouseAccessError) as refused:
        snowflake_connection()
    message = str(refused.value)
    assert "Airflow connection 'snowflake_faults'" in message
    assert "account fakesnow, user fake" in message
    assert "Incorrect username or password was specified" in message
    assert [request["path"] for request in received] == ["/session/v1/login-request"]
    assert received[0]["data"]["LOGIN_NAME"] == "fake"


def test_an_unreachable_warehouse_fails_the_login_within_its_timeout(fakesnow_server, proxy, monkeypatch):
    proxy.mode = "refuse"
    hook(monkeypatch, fakesnow_server, "SLUICE", port=proxy.port, login_timeout=5, network_timeout=5)
    started = time.monotonic()
    with pytest.raises(WarehouseAccessError, match="cannot log in to Snowflake through the Airflow connection"):
        snowflake_connection()
    assert time.monotonic() - started < 30
    assert proxy.connections >= 2, "the connector tried again before giving up"


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, object]:
    """An RSA key as the connection's ``private_key_content`` holds it (PEM), and its public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem, key.public_key()


def signed_with(login: dict, public_key: object) -> dict:
    """The claims of the login's JWT, verified against ``public_key`` (raises if not signed by it)."""
    import jwt

    assert login["data"]["AUTHENTICATOR"] == "SNOWFLAKE_JWT"
    return jwt.decode(login["data"]["TOKEN"], public_key, algorithms=["RS256"])


def test_the_load_signs_in_with_the_connections_private_key(fakesnow_server, login_standin, key_pair, monkeypatch):
    port, received = login_standin
    pem, public_key = key_pair
    hook(monkeypatch, fakesnow_server, "SLUICE", password=None, port=port, private_key_content=pem)
    with pytest.raises(WarehouseAccessError):
        snowflake_connection()
    assert signed_with(received[0], public_key)["sub"] == "FAKESNOW.FAKE"
    assert "PASSWORD" not in received[0]["data"]


def test_dbt_signs_in_with_the_same_private_key_through_the_cosmos_profile(
    fakesnow_server, login_standin, key_pair, monkeypatch, tmp_path
):
    from sluice.transform.cosmos import profile_config

    port, received = login_standin
    pem, public_key = key_pair
    hook(monkeypatch, fakesnow_server, "SLUICE", password=None, port=port, private_key_content=pem)
    monkeypatch.setenv("SLUICE_WAREHOUSE", "snowflake")
    monkeypatch.setenv("SLUICE_SNOWFLAKE_AUTH", "key-pair")
    with profile_config().ensure_profile(desired_profile_path=tmp_path / "profiles.yml") as (profiles, env):
        assert pem.splitlines()[1] not in profiles.read_text(), "the key stays out of the profile file"
        debug = subprocess.run(
            [VENV_BIN / "dbt", "debug", "--connection", "--profiles-dir", profiles.parent, "--target", "snowflake"],
            cwd=ROOT / "dbt_project",
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert "Incorrect username or password was specified" in debug.stdout, debug.stdout
    assert signed_with(received[0], public_key)["sub"] == "FAKESNOW.FAKE"
