"""Faults of the S3 lake (radosgw): each a clear error, nothing lost, nothing half-visible."""

from __future__ import annotations

import json
import time

import pytest

from faultproxy import proxy_before
from s3servers import use_bucket
from sluice.core.sources import StreamConfig
from sluice.ingest.commit import commit_batch
from sluice.ingest.landing import BatchLanding, read_manifest
from sluice.ingest.schema import stream_schema
from sluice.lake.bronze import bronze_table_path
from sluice.lake.files import batch_folder
from sluice.lake.storage import LakeAccessError, open_lake

pytestmark = pytest.mark.s3
BATCH = "20261120T060000Z"
STREAM = StreamConfig("users", record_key="id")
SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}}}


def landing(lake, ids) -> BatchLanding:
    attempt = BatchLanding(lake, "demo", BATCH, {"users": (STREAM, stream_schema(SCHEMA))})
    attempt.add_all({"stream": "users", "data": {"id": i}, "emitted_at": 1} for i in ids)
    return attempt


def landed_once(lake, ids) -> dict:
    """Land and commit the batch; its manifest."""
    manifest = landing(lake, ids).publish(state=[])["users"]
    commit_batch("demo", STREAM, BATCH, lake)
    return manifest


def batch_objects(lake) -> list[str]:
    return lake.list_files(batch_folder(bronze_table_path(lake, "demo", "users"), BATCH))


def assert_batch_is(lake, manifest: dict, rows: int, debris_allowed: bool = False) -> None:
    """The published landing and the committed table are ``manifest`` and ``rows``, and the
    batch's folder holds no other file (unless a failed attempt could not remove its own:
    the next attempt does)."""
    assert read_manifest(lake, "demo", "users", BATCH) == manifest
    table = lake.delta_table(bronze_table_path(lake, "demo", "users"))
    assert table.to_pyarrow_table().num_rows == rows
    published = sorted(lake.path(name) for name in manifest["files"])
    assert sorted(table.file_uris()) == [f"s3://{path}" for path in published]
    if debris_allowed:
        assert set(published) <= set(batch_objects(lake))
    else:
        assert published == batch_objects(lake)


@pytest.fixture
def root(radosgw, monkeypatch) -> str:
    monkeypatch.setenv("SLUICE_BRONZE_RETENTION_HOURS", "0")  # a replaced batch's files go at its commit
    return use_bucket(radosgw, monkeypatch)


def test_a_missing_bucket_is_a_clear_error(root):
    with pytest.raises(LakeAccessError, match=r"bucket 'sluice-no-such-bucket' does not exist; Sluice never creates"):
        open_lake("s3://sluice-no-such-bucket/lake")


def test_refused_credentials_are_a_clear_error_naming_where_they_came_from(root, radosgw, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(LakeAccessError, match=r"credentials from the environment\): the S3 server refused"):
        open_lake(root)
    connection = {"conn_type": "aws", "login": radosgw.env["AWS_ACCESS_KEY_ID"], "password": "wrong"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLUICE_BAD", json.dumps(connection | {"extra": {"endpoint_url": radosgw.endpoint}})
    )
    with pytest.raises(LakeAccessError, match=r"credentials from Airflow connection 'sluice_bad'\): the S3 server"):
        open_lake(root, aws_conn_id="sluice_bad")


@pytest.fixture
def proxy(radosgw):
    with proxy_before(radosgw.endpoint) as proxy:
        yield proxy


def test_an_unreachable_server_is_tried_again_with_backoff_then_a_clear_failure(root, proxy, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    monkeypatch.setenv("SLUICE_S3_MAX_ATTEMPTS", "4")
    proxy.mode = "refuse"
    started = time.monotonic()
    with pytest.raises(LakeAccessError, match=r"could not be reached after 4 attempts"):
        open_lake(root)
    assert proxy.connections >= 4, "every attempt was a new connection"
    assert time.monotonic() - started > 0.2, "attempts were spaced out"
    proxy.mode = "forward"
    assert open_lake(root).list_files(open_lake(root).path("landing")) == []


def test_a_server_that_stops_answering_fails_the_landing_and_the_batch_stays_as_published(root, proxy, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    monkeypatch.setenv("SLUICE_S3_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("SLUICE_S3_REQUEST_TIMEOUT_SECONDS", "1")
    lake = open_lake(root)
    first = landed_once(lake, range(10))

    rerun = landing(lake, range(20))
    proxy.mode = "stall"
    started = time.monotonic()
    with pytest.raises(OSError, match=r"AWS Error"):
        rerun.publish(state=[])
    rerun.abort()  # as the sync does; the files it could not delete go with the next attempt
    assert time.monotonic() - started < 60, "a hung server fails the landing within its timeouts"
    proxy.mode = "forward"
    assert_batch_is(lake, first, 10, debris_allowed=True)

    retry = landed_once(lake, range(30))
    assert retry["landed"] == 30
    assert_batch_is(lake, retry, 30)


def test_an_upload_refused_mid_way_leaves_the_published_batch_and_the_retry_lands_once(root, radosgw):
    lake = open_lake(root)
    first = landed_once(lake, range(10))
    bucket = root.removeprefix("s3://").split("/")[0]
    # the data files upload, then the server refuses the manifest, the landing's last write
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{bucket}/lake/landing/*",
    }
    radosgw.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [deny]}))
    rerun = landing(lake, range(20))
    with pytest.raises(OSError, match=r"ACCESS_DENIED"):
        rerun.publish(state=[])
    rerun.abort()
    assert_batch_is(lake, first, 10)  # the refused attempt's data files are gone

    radosgw.client().delete_bucket_policy(Bucket=bucket)
    retry = landed_once(lake, range(20))
    assert_batch_is(lake, retry, 20)
