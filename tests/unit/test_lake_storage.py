"""The lake's storage: the same operations on a local folder and on S3 (moto here)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sluice.lake.storage import LakeConfigError, open_lake


@pytest.fixture(scope="module")
def s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    import boto3

    for name, value in {
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SLUICE_AWS_CONN_ID": "sluice_lake_absent",  # no such Airflow connection: the environment's
    }.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket="lake-bucket")
    yield
    bucket = boto3.resource("s3", endpoint_url=s3_server).Bucket("lake-bucket")
    bucket.objects.all().delete()
    bucket.delete()


@pytest.fixture(params=["local", "s3"])
def lake(request, tmp_path):
    if request.param == "local":
        return open_lake(str(tmp_path / "lake"))
    request.getfixturevalue("s3_env")
    return open_lake("s3://lake-bucket/sluice/")


def test_files_are_written_read_listed_and_deleted(lake):
    folder = lake.path("landing", "faker", "users")
    lake.write_bytes(f"{folder}/batch=1.json", b'{"n": 1}')
    lake.write_bytes(f"{folder}/batch=2.json", b'{"n": 2}')
    lake.write_bytes(f"{folder}/batch=2.json", b'{"n": 3}')  # replaced whole
    assert lake.read_bytes(f"{folder}/batch=2.json") == b'{"n": 3}'
    assert [lake.relative(path) for path in lake.list_files(folder)] == [
        "landing/faker/users/batch=1.json",
        "landing/faker/users/batch=2.json",
    ]
    lake.delete_files(lake.list_files(folder))
    assert lake.list_files(folder) == [] and not lake.exists(f"{folder}/batch=1.json")
    assert lake.list_files(lake.path("no", "such", "folder")) == []


def test_delta_tables_are_reached_with_the_lakes_options(lake):
    from deltalake import DeltaTable, write_deltalake

    rows = pa.table({"id": [1, 2, 3]})
    write_deltalake(lake.uri("bronze", "t"), rows, storage_options=dict(lake.storage_options))
    table = DeltaTable(lake.uri("bronze", "t"), storage_options=dict(lake.storage_options))
    assert table.to_pyarrow_table().column("id").to_pylist() == [1, 2, 3]
    assert any(path.endswith(".parquet") for path in lake.list_files(lake.path("bronze", "t")))


def test_an_s3_root_names_bucket_and_prefix(s3_env):
    lake = open_lake("s3://lake-bucket/a/b/")
    assert (lake.root, lake.uri("bronze")) == ("lake-bucket/a/b", "s3://lake-bucket/a/b/bronze")
    assert lake.storage_options["conditional_put"] == "etag"
    assert lake.storage_options["AWS_ALLOW_HTTP"] == "true"


@pytest.mark.parametrize(
    ("root", "message"),
    [("gs://bucket/lake", "expected a folder or s3://"), ("s3:///lake", "no bucket named")],
)
def test_a_root_it_cannot_use_is_a_clear_error(root, message):
    with pytest.raises(LakeConfigError, match=message):
        open_lake(root)


def test_an_airflow_connection_supplies_credentials_and_endpoint(s3_env, s3_server, monkeypatch):
    import json

    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    connection = {"conn_type": "aws", "login": "testing", "password": "testing", "extra": {"endpoint_url": s3_server}}
    monkeypatch.setenv("AIRFLOW_CONN_SLUICE_LAKE", json.dumps(connection))
    lake = open_lake("s3://lake-bucket/lake", aws_conn_id="sluice_lake")
    lake.write_bytes(lake.path("state", "x.json"), b"{}")
    assert lake.read_bytes(lake.path("state", "x.json")) == b"{}"
    assert lake.storage_options["AWS_ENDPOINT_URL"] == s3_server
