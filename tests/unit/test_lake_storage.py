"""The lake's storage: the same operations on a local folder and on S3 (moto here)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from s3servers import use_bucket
from sluice.lake.storage import LakeConfigError, open_lake


@pytest.fixture
def s3_env(moto_s3, monkeypatch):
    return use_bucket(moto_s3, monkeypatch)


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
    assert lake.size(f"{folder}/batch=1.json") == 8
    lake.delete_files(lake.list_files(folder))
    assert lake.list_files(folder) == [] and not lake.exists(f"{folder}/batch=1.json")
    assert lake.list_files(lake.path("no", "such", "folder")) == []
    lake.delete_files([f"{folder}/batch=1.json"])  # already gone: a retried delete
    for missing in (lambda: lake.read_bytes(f"{folder}/batch=1.json"), lambda: lake.size(f"{folder}/batch=1.json")):
        with pytest.raises(FileNotFoundError, match="batch=1.json"):
            missing()


def test_a_stream_written_to_the_lake_appears_under_its_path(lake):
    path = lake.path("bronze", "s", "t", "_sluice_batch=1", "part-0.parquet")
    with lake.open_output_stream(path) as stream:
        pq.write_table(pa.table({"id": [1, 2]}), stream)
    assert pq.read_table(path, filesystem=lake.fs).num_rows == 2


def test_a_gzip_file_is_stored_and_read_as_its_own_bytes(lake):
    """A name ending .gz is no cue to compress: the lake neither gzips again nor gunzips."""
    import gzip

    data = gzip.compress(b'{"n": 1}\n' * 50)
    written, streamed = lake.path("landing", "a.json.gz"), lake.path("landing", "b.json.gz")
    lake.write_bytes(written, data)
    with lake.open_output_stream(streamed) as stream:
        stream.write(data)
    for path in (written, streamed):
        with lake.fs.open_input_file(path) as file:  # random access: never decompresses
            assert file.read() == data
        assert lake.size(path) == len(data) and lake.read_bytes(path) == data


def test_delta_tables_are_reached_with_the_lakes_options(lake):
    from deltalake import write_deltalake

    rows = pa.table({"id": [1, 2, 3]})
    assert lake.delta_table(lake.path("bronze", "t")) is None
    write_deltalake(lake.uri(lake.path("bronze", "t")), rows, storage_options=dict(lake.storage_options))
    table = lake.delta_table(lake.path("bronze", "t"))
    assert table.to_pyarrow_table().column("id").to_pylist() == [1, 2, 3]
    assert any(path.endswith(".parquet") for path in lake.list_files(lake.path("bronze", "t")))


def test_an_s3_root_names_bucket_and_prefix(s3_env):
    bucket = s3_env.removeprefix("s3://").split("/")[0]
    lake = open_lake(f"s3://{bucket}/a/b/")
    assert (lake.root, lake.uri(lake.path("bronze"))) == (f"{bucket}/a/b", f"s3://{bucket}/a/b/bronze")
    assert lake.storage_options["conditional_put"] == "etag"
    assert lake.storage_options["AWS_ALLOW_HTTP"] == "true"


@pytest.mark.parametrize(
    ("root", "message"),
    [("gs://bucket/lake", "expected a folder or s3://"), ("s3:///lake", "no bucket named")],
)
def test_a_root_it_cannot_use_is_a_clear_error(root, message):
    with pytest.raises(LakeConfigError, match=message):
        open_lake(root)


def test_an_airflow_connection_supplies_credentials_and_endpoint(s3_env, moto_s3, monkeypatch):
    import json

    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    endpoint = moto_s3.endpoint
    connection = {"conn_type": "aws", "login": "testing", "password": "testing", "extra": {"endpoint_url": endpoint}}
    monkeypatch.setenv("AIRFLOW_CONN_SLUICE_LAKE", json.dumps(connection))
    lake = open_lake(s3_env, aws_conn_id="sluice_lake")
    lake.write_bytes(lake.path("state", "x.json"), b"{}")
    assert lake.read_bytes(lake.path("state", "x.json")) == b"{}"
    assert lake.storage_options["AWS_ENDPOINT_URL"] == endpoint
