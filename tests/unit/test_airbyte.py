"""The ``airbyte`` driver against a stand-in of Airbyte's public API that writes into S3 (moto).

The operator runs as Airflow runs it: ``execute``, then (deferrable) the trigger's events
and ``execute_complete``. What it lands then goes through the shared bronze commit.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airbyte_standin import AirbyteStandin
from airflow.providers.common.compat.sdk import TaskDeferred

from driver_harness import PURCHASES, USERS
from s3servers import use_bucket

BATCH = "20261120T000000Z"


@pytest.fixture(scope="module")
def standin(moto_s3):
    import os

    server = AirbyteStandin(env={**os.environ, **moto_s3.env})
    server.setup(client_id="sluice", client_secret="secret")
    yield server
    server.close()


@pytest.fixture
def airbyte(standin, moto_s3, monkeypatch, tmp_path):
    """A lake on S3, an ``airbyte`` source ``shop`` over a new stand-in connection, and the
    Airflow connection of the API: returns a function that scripts the connection."""
    from sluice.lake.storage import open_lake

    root = use_bucket(moto_s3, monkeypatch)
    monkeypatch.setenv("SLUICE_LAKE_ROOT", root)
    lake = open_lake(root)
    bucket, prefix = lake.root.split("/", 1)
    connection_id = str(uuid.uuid4())
    (tmp_path / "include" / "sources").mkdir(parents=True)
    (tmp_path / "include" / "sources" / "shop.yml").write_text(
        "driver: airbyte\n"
        f"airbyte: {{connection_id: {connection_id}}}\n"
        "streams:\n  users: {record_key: id, subject_key: email, identifiers: {email: email, id: user_id}}\n"
        "  purchases: {record_key: id, subject_key: user_id, identifiers: {user_id: user_id}}\n"
    )
    monkeypatch.setenv("SLUICE_INCLUDE_DIR", str(tmp_path / "include"))
    connect(monkeypatch, standin)

    def script(**overrides):
        destination = {
            "destinationId": str(uuid.uuid4()),
            "destinationType": "s3",
            "configuration": {
                "s3_bucket_name": bucket,
                "s3_bucket_path": f"{prefix}/bronze",
                "s3_path_format": "${NAMESPACE}/${STREAM_NAME}/airbyte/${YEAR}_${MONTH}_${DAY}_${EPOCH}_",
                "s3_endpoint": moto_s3.endpoint,
                "format": {"format_type": "Parquet"},
            },
        }
        destination["configuration"].update(overrides.pop("configuration", {}))
        destination.update(overrides.pop("destination", {}))
        connection = {
            "destination": destination,
            "namespaceFormat": "shop",
            "streams": {
                "users": {
                    "schema": USERS,
                    "records": [
                        {"id": i, "email": f"u{i}@example.com", "updated_at": "2026-11-20T01:00:00Z"} for i in range(7)
                    ],
                },
                "purchases": {"schema": PURCHASES, "records": [{"id": i, "user_id": i % 7} for i in range(11)]},
            },
            **overrides,
        }
        standin.setup(connections={connection_id: connection})
        return connection_id

    script.lake = lake
    script.connection_id = connection_id
    return script


def connect(monkeypatch, standin, secret="secret"):
    connection = {
        "conn_type": "airbyte",
        "host": standin.url,
        "login": "sluice",
        "password": secret,
        "extra": {"retries": 4, "retry_seconds": 0.05},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AIRBYTE_DEFAULT", json.dumps(connection))


def operator(**kwargs):
    from sluice.ingest.airbyte.operators import AirbyteSyncOperator

    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("batch", BATCH)
    return AirbyteSyncOperator(task_id="land", source="shop", wait_seconds=0.05, **kwargs)


async def _first_event(trigger):
    async for event in trigger.run():
        return event.payload


def run_deferrable(op):
    """execute, then the trigger until its event, then the method it names: as Airflow does."""
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    payload = asyncio.run(_first_event(deferred.value.trigger))
    return getattr(op, deferred.value.method_name)({}, payload), deferred.value


def syncs_started(standin, connection_id):
    return [job for job in standin.jobs if job["connectionId"] == connection_id]


def test_a_sync_lands_exactly_its_files_and_bronze_registers_them_where_airbyte_wrote_them(airbyte, standin):
    from sluice.core.sources import load_source
    from sluice.ingest.commit import commit_batch
    from sluice.ingest.landing import read_manifest
    from sluice.lake.files import active_files

    connection_id = airbyte(statuses=["pending", "queued", "running"])
    lake = airbyte.lake
    counts, deferred = run_deferrable(operator(deferrable=True))
    assert counts == {
        "users": {"read": 7, "landed": 7, "quarantined": 0},
        "purchases": {"read": 11, "landed": 11, "quarantined": 0},
    }
    assert deferred.trigger.job_id == syncs_started(standin, connection_id)[0]["jobId"]
    manifest = read_manifest(lake, "shop", "users", BATCH)
    assert manifest["attempt"] == f"airbyte-job-{deferred.trigger.job_id}"
    assert all(name.startswith("bronze/shop/users/airbyte/") for name in manifest["files"])

    source = load_source("shop")
    result = commit_batch("shop", source.stream("users"), BATCH, lake)
    table = lake.delta_table(lake.path("bronze", "shop", "users"))
    assert result["rows"] == 7 and table.to_pyarrow_table().num_rows == 7
    registered = {lake.path("bronze", "shop", "users", path) for path in active_files(table, BATCH)}
    assert registered == {lake.path(name) for name in manifest["files"]}, "registered where Airbyte wrote it"
    assert set(table.to_pyarrow_table().column("_sluice_batch").to_pylist()) == {BATCH}

    # a second batch: a new sync; its files and only its files land, the first batch's stay
    second = "20261120T060000Z"
    counts = operator(batch=second).execute({})
    assert counts["users"]["landed"] == 7 and len(syncs_started(standin, connection_id)) == 2
    later = read_manifest(lake, "shop", "users", second)
    assert set(later["files"]).isdisjoint(manifest["files"])
    commit_batch("shop", source.stream("users"), second, lake)
    assert lake.delta_table(lake.path("bronze", "shop", "users")).to_pyarrow_table().num_rows == 14


def test_a_rerun_of_a_batch_collects_its_job_again_instead_of_syncing_twice(airbyte, standin):
    from sluice.ingest.landing import read_manifest

    connection_id = airbyte()
    first = operator().execute({})
    files = read_manifest(airbyte.lake, "shop", "purchases", BATCH)["files"]
    again = operator().execute({})
    assert again == first and len(syncs_started(standin, connection_id)) == 1
    assert read_manifest(airbyte.lake, "shop", "purchases", BATCH)["files"] == files


def test_a_retried_task_reattaches_to_the_running_job(airbyte, standin):
    connection_id = airbyte(statuses=["running"] * 10)
    with pytest.raises(TaskDeferred):
        operator(deferrable=True).execute({})  # the first try is lost while it waits
    assert operator(deferrable=False).execute({})["users"]["landed"] == 7
    posts = [r for r in standin.requests if r["method"] == "POST" and r["path"] == "/v1/jobs"]
    assert len(syncs_started(standin, connection_id)) == 1, posts


def test_a_job_started_elsewhere_is_waited_for_not_duplicated(airbyte, standin):
    from sluice.ingest.airbyte.hook import AirbyteServerHook

    connection_id = airbyte(statuses=["running"] * 5)
    job, started = AirbyteServerHook().start_sync(connection_id)  # e.g. Airbyte's own schedule
    assert started
    assert operator().execute({})["purchases"]["landed"] == 11
    assert [j["jobId"] for j in syncs_started(standin, connection_id)] == [job["jobId"]]


@pytest.mark.parametrize("deferrable", [False, True])
def test_a_timeout_cancels_the_job(airbyte, standin, deferrable):
    from sluice.ingest.airbyte.hook import AirbyteError

    connection_id = airbyte(statuses=["running"] * 200)
    op = operator(deferrable=deferrable, timeout=0.3)
    with pytest.raises(AirbyteError, match=r"did not end within 0 s; it was cancelled"):
        run_deferrable(op) if deferrable else op.execute({})
    (job,) = syncs_started(standin, connection_id)
    assert job["status"] == "cancelled"
    assert any(r["method"] == "DELETE" and r["path"] == f"/v1/jobs/{job['jobId']}" for r in standin.requests)


def test_killing_the_task_cancels_the_job_on_a_worker_and_in_the_triggerer(airbyte, standin):
    from sluice.ingest.airbyte.hook import AirbyteError

    connection_id = airbyte(statuses=["running"] * 200)
    op = operator()
    failure = []
    waiting = threading.Thread(target=lambda: failure.append(pytest.raises(AirbyteError, op.execute, {})))
    waiting.start()
    while op.job_id is None:
        time.sleep(0.05)
    op.on_kill()  # what Airflow calls when the task is stopped
    waiting.join(timeout=30)
    (job,) = syncs_started(standin, connection_id)
    assert job["status"] == "cancelled" and "ended cancelled" in str(failure[0].value)

    # deferred: the triggerer calls the trigger's on_kill
    retry = operator(deferrable=True, batch="20261120T060000Z")
    with pytest.raises(TaskDeferred) as deferred:
        retry.execute({})
    asyncio.run(deferred.value.trigger.on_kill())
    assert syncs_started(standin, connection_id)[-1]["status"] == "cancelled"


def test_a_failed_job_fails_the_task_with_its_id_and_the_next_try_syncs_again(airbyte, standin):
    from sluice.ingest.airbyte.hook import AirbyteError
    from sluice.ingest.landing import manifest_path

    connection_id = airbyte(outcome="failed")
    with pytest.raises(AirbyteError, match=rf"Airbyte job \d+ of connection {connection_id} .* ended failed"):
        operator().execute({})
    assert not airbyte.lake.exists(manifest_path(airbyte.lake, "shop", "users", BATCH))
    airbyte(outcome="succeeded")
    assert operator().execute({})["users"]["landed"] == 7
    assert [job["status"] for job in syncs_started(standin, connection_id)] == ["failed", "succeeded"]


def test_server_errors_are_retried_then_succeed(airbyte, standin):
    airbyte()
    standin.fail_next(3, 503)
    assert operator().execute({})["users"]["landed"] == 7
    assert [r["status"] for r in standin.requests[-40:]].count(503) == 3


def test_an_expired_token_is_renewed_and_the_call_goes_through(airbyte, standin):
    from sluice.ingest.airbyte.hook import AirbyteServerHook

    connection_id = airbyte()
    hook = AirbyteServerHook()
    assert hook.get_connection_info(connection_id)["connectionId"] == connection_id
    standin.revoke_tokens()
    assert hook.get_connection_info(connection_id)["connectionId"] == connection_id
    statuses = [(r["path"], r["status"]) for r in standin.requests[-3:]]
    assert statuses == [
        (f"/v1/connections/{connection_id}", 401),
        ("/v1/applications/token", 200),
        (f"/v1/connections/{connection_id}", 200),
    ]


def test_bad_credentials_and_an_unknown_connection_say_what_is_wrong(airbyte, standin, monkeypatch):
    from sluice.ingest.airbyte.hook import AirbyteError

    airbyte()
    connect(monkeypatch, standin, secret="wrong")
    with pytest.raises(
        AirbyteError, match=r"\(Airflow connection 'airbyte_default'\) refused the client credentials \(HTTP 401\)"
    ):
        operator().execute({})
    connect(monkeypatch, standin)
    with pytest.raises(AirbyteError, match=r"HTTP 404: Could not find connection with id: nope"):
        operator(connection_id="nope").execute({})


def test_a_file_that_is_not_parquet_or_a_count_that_disagrees_commits_nothing_and_keeps_the_files(airbyte, standin):
    from sluice.ingest.landing import LandingError, manifest_path

    lake = airbyte.lake
    airbyte(bad_file="purchases")
    with pytest.raises(LandingError, match=r"not Parquet files of this job.*Nothing was committed") as error:
        operator().execute({})
    kept = [line.strip() for line in str(error.value).splitlines() if line.startswith("  s3://")]
    assert any("/purchases/airbyte/" in path for path in kept)
    assert all(lake.exists(path.removeprefix("s3://")) for path in kept)
    assert not lake.exists(manifest_path(lake, "shop", "users", BATCH))
    rejected = lake.read_json(lake.path("quarantine", "shop", "_airbyte", f"batch={BATCH}.json"))
    assert "not Parquet" in rejected["reason"] and rejected["files"] == kept

    second = "20261120T060000Z"
    airbyte(rows_reported=20)
    with pytest.raises(LandingError, match=r"its files hold 18 record\(s\) but Airbyte reports 20 synced"):
        operator(batch=second).execute({})
    assert not lake.exists(manifest_path(lake, "shop", "users", second))
    assert lake.delta_table(lake.path("bronze", "shop", "users")) is None


def test_a_connection_that_does_not_write_where_the_source_declares_is_refused_before_syncing(airbyte, standin):
    from sluice.ingest.airbyte.destination import DestinationError

    connection_id = airbyte(destination={"destinationType": "snowflake"})
    with pytest.raises(DestinationError, match=r"writes to a 'snowflake' destination .* declares destination lake"):
        operator().execute({})
    airbyte(configuration={"s3_path_format": "${STREAM_NAME}/${EPOCH}_"})
    with pytest.raises(DestinationError, match=r"not to a folder of its own inside the bronze table"):
        operator().execute({})
    airbyte(configuration={"s3_path_format": "${NAMESPACE}/${STREAM_NAME}/airbyte/"})
    with pytest.raises(DestinationError, match=r"could overwrite files of an earlier one"):
        operator().execute({})
    airbyte(configuration={"format": {"format_type": "JSONL"}})
    with pytest.raises(DestinationError, match=r"writes JSONL; set its output format to Parquet"):
        operator().execute({})
    assert syncs_started(standin, connection_id) == []


#: the metadata columns as Airbyte's S3 destination documents them for Parquet (S3 migration
#: guide, 1.0.0): _airbyte_extracted_at is Int64(logicalType=Timestamp(Milliseconds))
DOCUMENTED_COLUMNS = [
    ("_airbyte_raw_id", pa.string()),
    ("_airbyte_extracted_at", pa.timestamp("ms", tz="UTC")),
    ("_airbyte_generation_id", pa.int64()),
    (
        "_airbyte_meta",
        pa.struct(
            [
                ("sync_id", pa.int64()),
                (
                    "changes",
                    pa.list_(pa.struct([("field", pa.string()), ("change", pa.string()), ("reason", pa.string())])),
                ),
            ]
        ),
    ),
]


def test_the_stand_in_writes_parquet_as_airbytes_s3_destination_does(airbyte, standin):
    import re

    airbyte()
    operator().execute({})
    lake = airbyte.lake
    (job,) = syncs_started(standin, airbyte.connection_id)
    names = lake.read_json(lake.path("landing", "shop", "users", f"batch={BATCH}.json"))["files"]
    # <path format: ..._${EPOCH}_><part id>.parquet, the part id counting up: 7 records, 5 a part
    parts = [re.fullmatch(r"bronze/shop/users/airbyte/\d{4}_\d{2}_\d{2}_(\d{13})_(\d+)\.parquet", n) for n in names]
    assert all(parts) and sorted(int(p[2]) for p in parts) == [0, 1] and len({p[1] for p in parts}) == 1
    for name in names:
        with lake.fs.open_input_file(lake.path(name)) as file:
            parquet = pq.ParquetFile(file)
            schema = parquet.schema_arrow
            extracted = parquet.schema.column(1)
            sync_ids = set(
                parquet.read(columns=["_airbyte_meta"]).column(0).combine_chunks().field("sync_id").to_pylist()
            )
        assert [(f.name, f.type) for f in schema][:4] == DOCUMENTED_COLUMNS
        logical = json.loads(extracted.logical_type.to_json())
        assert extracted.physical_type == "INT64"
        assert (logical["Type"], logical["isAdjustedToUTC"], logical["timeUnit"]) == ("Timestamp", True, "milliseconds")
        assert sync_ids == {job["jobId"]}


def test_a_retried_job_lands_only_its_succeeded_attempts_files(airbyte, standin):
    """Airbyte retried the job: the failed first attempt left part files with the job's
    sync id; the second wrote every record again. Only the second's files land."""
    from sluice.core.sources import load_source
    from sluice.ingest.airbyte.hook import AirbyteServerHook
    from sluice.ingest.commit import commit_batch
    from sluice.ingest.landing import read_manifest

    connection_id = airbyte(failed_attempts=1)
    lake = airbyte.lake
    counts = operator().execute({})
    assert counts == {
        "users": {"read": 7, "landed": 7, "quarantined": 0},
        "purchases": {"read": 11, "landed": 11, "quarantined": 0},
    }
    (job,) = syncs_started(standin, connection_id)
    assert job["rowsSynced"] == 7 + 11, "the last attempt's committed records"
    attempts = AirbyteServerHook().job_attempts(job["jobId"])
    committed = [(a["id"], a["status"], a["totalStats"]["recordsCommitted"]) for a in attempts]
    assert committed == [(0, "failed", 3 + 5), (1, "succeeded", 7 + 11)]
    for stream, rows, failed_rows in (("users", 7, 3), ("purchases", 11, 5)):
        manifest = read_manifest(lake, "shop", stream, BATCH)
        earlier = manifest["airbyte_earlier_attempt_files"]
        assert manifest["airbyte_attempt"] == 1 and earlier and set(earlier).isdisjoint(manifest["files"])
        assert len(manifest["files"]) == -(-rows // 5) and len(earlier) == -(-failed_rows // 5)
        left = pq.read_table([lake.path(name) for name in earlier], filesystem=lake.fs)
        assert left.num_rows == failed_rows, "the failed attempt's files are still there"
        assert set(left.column("_airbyte_meta").combine_chunks().field("sync_id").to_pylist()) == {job["jobId"]}
        result = commit_batch("shop", load_source("shop").stream(stream), BATCH, lake)
        table = lake.delta_table(lake.path("bronze", "shop", stream)).to_pyarrow_table()
        assert result["rows"] == rows and table.num_rows == rows
        assert sorted(table.column("id").to_pylist()) == list(range(rows)), "each record once"


def test_where_airbyte_does_not_say_the_attempts_a_retried_jobs_leftovers_fail_the_count(airbyte, standin, monkeypatch):
    from sluice.ingest.landing import LandingError, manifest_path

    airbyte(failed_attempts=1)
    connection = json.loads(os.environ["AIRFLOW_CONN_AIRBYTE_DEFAULT"])
    connection["extra"]["config_api_url"] = f"{standin.url}/no-configuration-api"  # e.g. Airbyte Cloud
    monkeypatch.setenv("AIRFLOW_CONN_AIRBYTE_DEFAULT", json.dumps(connection))
    with pytest.raises(LandingError, match=r"its files hold 26 record\(s\) but Airbyte reports 18 synced\. Nothing"):
        operator().execute({})
    assert not airbyte.lake.exists(manifest_path(airbyte.lake, "shop", "users", BATCH))


def test_a_file_with_records_of_two_attempts_is_refused_and_an_earlier_attempts_file_is_left_out(local_lake):
    from datetime import UTC, datetime, timedelta

    from sluice.ingest.airbyte.landing import collect_job
    from sluice.ingest.landing import LandingError

    second = datetime(2026, 11, 20, 1, 0, 10, tzinfo=UTC)  # the succeeded attempt's start
    attempts = [
        {
            "id": 0,
            "status": "failed",
            "createdAt": int(second.timestamp()) - 60,
            "endedAt": int(second.timestamp()) - 1,
        },
        {"id": 1, "status": "succeeded", "createdAt": int(second.timestamp()), "endedAt": int(second.timestamp()) + 60},
    ]
    folder = local_lake.path("bronze", "shop", "users", "airbyte")
    meta = DOCUMENTED_COLUMNS[3][1]

    def part(name, *extracted):
        table = pa.table(
            {
                "_airbyte_extracted_at": pa.array(extracted, DOCUMENTED_COLUMNS[1][1]),
                "_airbyte_meta": pa.array([{"sync_id": 7, "changes": []}] * len(extracted), meta),
                "id": list(range(len(extracted))),
            }
        )
        local_lake.fs.create_dir(folder)
        pq.write_table(table, f"{folder}/{name}", filesystem=local_lake.fs)

    job = {"jobId": 7, "startTime": "2026-11-20T01:00:00Z", "rowsSynced": 2, "connectionId": "c"}
    part("a_0.parquet", second - timedelta(seconds=5))  # the failed attempt's
    part("b_0.parquet", second + timedelta(seconds=2), second + timedelta(seconds=3))
    (manifest,) = collect_job(local_lake, "shop", BATCH, job, {"users": folder}, attempts).values()
    assert manifest["files"] == ["bronze/shop/users/airbyte/b_0.parquet"]
    assert manifest["airbyte_earlier_attempt_files"] == ["bronze/shop/users/airbyte/a_0.parquet"]

    part("c_0.parquet", second - timedelta(seconds=1), second + timedelta(seconds=4))
    with pytest.raises(LandingError, match=r"not Parquet files of this job and its succeeded attempt alone") as error:
        collect_job(local_lake, "shop", BATCH, {**job, "rowsSynced": 4}, {"users": folder}, attempts)
    assert "airbyte/c_0.parquet" in str(error.value)


def test_a_job_moves_one_status_per_poll_not_by_the_clock(airbyte, standin):
    from sluice.ingest.airbyte.hook import AirbyteServerHook

    connection_id = airbyte(statuses=["pending", "queued", "running"])
    hook = AirbyteServerHook()
    job, started = hook.start_sync(connection_id)
    time.sleep(1.5)  # a slow worker: the job must not have moved meanwhile
    seen = [hook.get_job(job["jobId"])["status"] for _ in range(3)]
    assert started and seen == ["pending", "queued", "running"]
    assert hook.running_job(connection_id)["jobId"] == job["jobId"], "listing jobs moves nothing"
    for _ in range(100):
        status = hook.get_job(job["jobId"])["status"]
        if status != "running":
            break
        time.sleep(0.05)
    assert status == "succeeded"


@pytest.fixture
def warehouse_connection(standin, snowflake, fakesnow_server, monkeypatch, tmp_path):
    """An ``airbyte`` source ``crm`` whose connection writes straight into fakesnow."""
    from fakesnow_db import airflow_connection

    database = snowflake.database
    monkeypatch.setenv("SLUICE_WAREHOUSE", "snowflake")
    monkeypatch.setenv("AIRFLOW_CONN_SNOWFLAKE_DEFAULT", json.dumps(airflow_connection(fakesnow_server, database)))
    monkeypatch.setenv("SLUICE_LAKE_ROOT", str(tmp_path / "lake"))  # where the job record is kept
    connection_id = str(uuid.uuid4())
    (tmp_path / "include" / "sources").mkdir(parents=True)
    (tmp_path / "include" / "sources" / "crm.yml").write_text(
        "driver: airbyte\n"
        f"airbyte: {{connection_id: {connection_id}, destination: warehouse}}\n"
        "streams:\n  users: {record_key: id, subject_key: email, identifiers: {email: email, id: user_id}}\n"
        "  purchases: {record_key: id, subject_key: user_id, identifiers: {user_id: user_id}}\n"
    )
    monkeypatch.setenv("SLUICE_INCLUDE_DIR", str(tmp_path / "include"))
    connect(monkeypatch, standin)

    def script(users=7, **overrides):
        destination = {
            "destinationId": str(uuid.uuid4()),
            "destinationType": "snowflake",
            "configuration": {
                "host": fakesnow_server["host"],
                "port": fakesnow_server["port"],
                "protocol": fakesnow_server["protocol"],
                "account": fakesnow_server["account"],
                "username": fakesnow_server["user"],
                "credentials": {"password": fakesnow_server["password"]},
                "database": database,
                "schema": "AIRBYTE_RAW",
            },
        }
        streams = {
            "users": {"schema": USERS, "records": [{"id": i, "email": f"u{i}@x.io"} for i in range(users)]},
            "purchases": {"schema": PURCHASES, "records": [{"id": i, "user_id": i % 7} for i in range(11)]},
        }
        standin.setup(
            connections={
                connection_id: {"destination": destination, "namespaceDefinition": "destination", **overrides}
                | {"streams": streams}
            }
        )
        return connection_id

    return script


def test_a_connection_into_the_warehouse_is_checked_by_job_and_read_through_bronze_views(
    warehouse_connection, standin, snowflake
):
    from sluice.ingest.airbyte.operators import AirbyteSyncOperator
    from sluice.ingest.landing import LandingError

    def land(batch):
        return AirbyteSyncOperator(task_id="land", source="crm", batch=batch, wait_seconds=0.05, deferrable=False)

    warehouse_connection()
    assert land(BATCH).execute({})["rows"] == {"users": 7, "purchases": 11}
    warehouse_connection(users=3)
    second = "20261120T060000Z"
    assert land(second).execute({})["rows"] == {"users": 3, "purchases": 11}
    cursor = snowflake.cursor()
    cursor.execute("SELECT _sluice_batch, count(*) FROM bronze.crm__users GROUP BY 1 ORDER BY 1")
    assert cursor.fetchall() == [(BATCH, 7), (second, 3)]
    cursor.execute("SELECT count(*) FROM airbyte_raw.users")
    assert cursor.fetchone() == (10,), "the destination's table is read in place, nothing copied"

    # a job whose tables disagree with its count publishes nothing
    warehouse_connection(rows_reported=99)
    third = "20261120T120000Z"
    with pytest.raises(LandingError, match=r"Airbyte reports 99 synced; nothing was published"):
        land(third).execute({})
    cursor.execute("SELECT count(DISTINCT _sluice_batch) FROM bronze.crm__purchases")
    assert cursor.fetchone() == (2,)


def test_an_erasure_removes_the_person_from_every_table_the_connection_wrote(
    warehouse_connection, standin, snowflake, fakesnow_server, tmp_path, monkeypatch
):
    from snowflake import connector

    from sluice.erasure import audit
    from sluice.erasure import run as erasure_run
    from sluice.erasure.requests import ErasureRequest, pending_requests, record_requests
    from sluice.ingest.airbyte.operators import AirbyteSyncOperator
    from sluice.lake.storage import open_lake

    monkeypatch.setenv("SLUICE_ERASURE_SALT", "airbyte-salt")
    warehouse_connection()
    for batch in (BATCH, "20261120T060000Z"):
        AirbyteSyncOperator(task_id="land", source="crm", batch=batch, wait_seconds=0.05, deferrable=False).execute({})
    cursor = snowflake.cursor()

    def held():
        counts = {}
        for table, where in (
            ("airbyte_raw.users", "email = 'u3@x.io'"),
            ("airbyte_raw.purchases", "user_id = 3"),
            ("airbyte_internal.airbyte_raw_raw__stream_users", "_airbyte_data:email::varchar = 'u3@x.io'"),
            ("airbyte_internal.airbyte_raw_raw__stream_purchases", "_airbyte_data:user_id::varchar = '3'"),
            ("bronze.crm__purchases", "user_id = 3"),
        ):
            cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}")
            counts[table] = cursor.fetchone()[0]
        return counts

    before = held()
    assert before == dict.fromkeys(before, 4) | {
        "airbyte_raw.users": 2,
        "airbyte_internal.airbyte_raw_raw__stream_users": 2,
    }, "two syncs: the person's user row and two purchases each, typed and raw"
    cursor.execute("SELECT count(*) FROM airbyte_raw.purchases")
    purchases = cursor.fetchone()[0]

    lake = open_lake(str(tmp_path / "lake"))
    record_requests(lake, [ErasureRequest("crm-1", {"email": ["U3@x.io"]})])

    def connect():
        return connector.connect(**fakesnow_server, database=snowflake.database, schema="BRONZE")

    result = erasure_run.process_request(lake, pending_requests(lake)[0], b"airbyte-salt", connect, None)
    assert result["state"] == "done"
    assert set(held().values()) == {0}, "resolved from the email to the user id, raw tables included"
    cursor.execute("SELECT count(*) FROM airbyte_raw.purchases")
    assert cursor.fetchone()[0] == purchases - 4, "nobody else's rows"
    removed = audit.steps(lake, "crm-1")["erased_warehouse"]["rows_removed"]
    assert removed["AIRBYTE_INTERNAL.AIRBYTE_RAW_RAW__STREAM_USERS"] == 2 and removed["AIRBYTE_RAW.PURCHASES"] == 4
