"""S3 servers for tests: moto for fast unit tests, Ceph radosgw (the real thing) for the rest.

Each server is started once per test session; each test gets a bucket of its own.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from environment import ROOT, VENV_BIN


@dataclass
class S3Server:
    """A running S3 server and the AWS environment that points clients at it."""

    env: dict[str, str]
    stop_command: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return self.env["AWS_ENDPOINT_URL"]

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.env["AWS_DEFAULT_REGION"],
        )

    def new_bucket(self) -> str:
        name = f"sluice-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
        if self.stop_command:
            subprocess.run(self.stop_command, check=False, capture_output=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto() -> S3Server:
    """moto's server in its own process (deltalake calls that hold the GIL would stall a thread)."""
    port = _free_port()
    process = subprocess.Popen(
        [VENV_BIN / "moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"moto_server did not start on {endpoint}") from None
            time.sleep(0.1)
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
    return S3Server(env=env, process=process)


def start_radosgw(folder: Path) -> S3Server:
    """Ceph radosgw on loopback through ``include/scripts/s3.sh`` (about 12 s)."""
    script = str(ROOT / "include" / "scripts" / "s3.sh")
    done = subprocess.run([script, "start", str(folder)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"the S3 server did not start ({script} start):\n{done.stderr}")
    env = {}
    for line in done.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = shlex.split(value)[0] if value else ""
    return S3Server(env=env, stop_command=[script, "stop", str(folder)])


def use_bucket(server: S3Server, monkeypatch) -> str:
    """Point this process's AWS settings at ``server``; returns a new bucket's lake root."""
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SLUICE_AWS_CONN_ID", "sluice_tests_no_such_connection")  # the environment's keys
    return f"s3://{server.new_bucket()}/lake"
