"""Bronze batches loaded into Snowflake through the real connector, against a fakesnow server.

A local lake's files go through an internal stage: PUT, then a COPY INTO of the upload's
prefix (no ``FILES =``). A lake on S3 is read through an external stage, naming the
batch's files with ``FILES =``; fakesnow cannot read S3 (DuckDB's httpfs extension is not
available here), so that path runs against an external stage whose URL is the lake's
folder (``file://``), which fakesnow reads through the same COPY, and the statements sent
are checked as Snowflake would get them.
"""

from __future__ import annotations

from datetime import UTC

import pytest

from sluice.core.sources import StreamConfig
from sluice.ingest.commit import commit_batch
from sluice.ingest.landing import BatchLanding
from sluice.ingest.schema import stream_schema
from sluice.lake.files import active_files, bronze_table
from sluice.warehouse.snowflake_load import SnowflakeLoadError, load_batch

B1, B2 = "20261120T000000Z", "20261120T060000Z"
STREAM = StreamConfig("users", record_key="id")
SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "email": {"type": "string"},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def land_and_commit(lake, batch, ids, schema=SCHEMA, data=None):
    landing = BatchLanding(lake, "demo", batch, {"users": (STREAM, stream_schema(schema))})
    landing.add_all(
        {
            "stream": "users",
            "data": data(i) if data else {"id": i, "email": f"{i}@x.io", "address": {"city": "Oslo"}},
            "emitted_at": 1,
        }
        for i in ids
    )
    landing.publish(state=[])
    commit_batch("demo", STREAM, batch, lake)


def rows(connection, sql):
    cursor = connection.cursor()
    cursor.execute(sql)
    return cursor.fetchall()


def test_a_load_replaces_exactly_its_batch_and_leaves_nothing_behind(local_lake, snowflake):
    land_and_commit(local_lake, B1, [1, 2])
    land_and_commit(local_lake, B2, [3])
    assert load_batch("demo", "users", B1, snowflake, local_lake) == {"table": "BRONZE.DEMO__USERS", "rows": 2}
    assert load_batch("demo", "users", B2, snowflake, local_lake)["rows"] == 1
    land_and_commit(local_lake, B1, [1, 2, 4])  # a rerun of the first batch, with a new record
    assert load_batch("demo", "users", B1, snowflake, local_lake)["rows"] == 3
    assert load_batch("demo", "users", B1, snowflake, local_lake)["rows"] == 3  # a retry: the same

    assert rows(snowflake, "SELECT _sluice_batch, id, email, address:city FROM demo__users ORDER BY id") == [
        (B1, 1, "1@x.io", '"Oslo"'),
        (B1, 2, "2@x.io", '"Oslo"'),
        (B2, 3, "3@x.io", '"Oslo"'),
        (B1, 4, "4@x.io", '"Oslo"'),
    ]
    tables = rows(snowflake, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'BRONZE'")
    assert tables == [("DEMO__USERS",)], "the load tables were dropped"
    assert rows(snowflake, "LIST @SLUICE_LAKE") == [], "the uploaded files were removed from the stage"


def test_an_s3_lake_can_be_uploaded_to_an_internal_stage_instead_of_read_through_an_external_one(
    moto_s3, monkeypatch, snowflake
):
    from s3servers import use_bucket
    from sluice.lake.storage import open_lake
    from sluice.warehouse.snowflake_load import stage_type

    lake = open_lake(use_bucket(moto_s3, monkeypatch))
    assert stage_type(lake) == "external"
    monkeypatch.setenv("SLUICE_SNOWFLAKE_STAGE_TYPE", "internal")
    land_and_commit(lake, B1, [1, 2, 3])
    assert load_batch("demo", "users", B1, snowflake, lake)["rows"] == 3
    loaded = rows(snowflake, "SELECT id, email FROM demo__users ORDER BY id")
    assert loaded == [(1, "1@x.io"), (2, "2@x.io"), (3, "3@x.io")]
    assert rows(snowflake, "LIST @SLUICE_LAKE") == [], "the uploaded copies were removed from the stage"
    monkeypatch.setenv("SLUICE_SNOWFLAKE_STAGE_TYPE", "inside")
    with pytest.raises(ValueError, match="SLUICE_SNOWFLAKE_STAGE_TYPE='inside': expected one of external, internal"):
        load_batch("demo", "users", B1, snowflake, lake)


def test_a_column_of_another_type_fails_the_load_clearly_and_the_batch_already_there_stays(local_lake, snowflake):
    land_and_commit(local_lake, B1, [1, 2])
    load_batch("demo", "users", B1, snowflake, local_lake)
    # a column the warehouse holds as a date cannot take the lake's text
    rows(snowflake, "ALTER TABLE demo__users DROP COLUMN email")
    rows(snowflake, "ALTER TABLE demo__users ADD COLUMN email DATE")
    land_and_commit(local_lake, B1, [1, 2, 3])
    with pytest.raises(SnowflakeLoadError, match=r'"EMAIL" is DATE but the lake holds VARCHAR'):
        load_batch("demo", "users", B1, snowflake, local_lake)
    assert rows(snowflake, "SELECT count(*) FROM demo__users WHERE _sluice_batch = '20261120T000000Z'") == [(2,)]


def test_a_copy_that_loads_another_count_than_the_lake_holds_is_refused():
    from sluice.warehouse.snowflake_load import _check_copy

    with pytest.raises(SnowflakeLoadError, match=r"COPY loaded 2 rows but the lake holds 3; nothing was replaced"):
        _check_copy([("f.parquet", "LOADED", 2, 2, 1, 0, None)], 3)
    with pytest.raises(SnowflakeLoadError, match=r"COPY rejected f.parquet \(LOAD_FAILED\): Numeric value 'x'"):
        _check_copy([("f.parquet", "LOAD_FAILED", 2, 0, 1, 1, "Numeric value 'x' is not recognized")], 2)


def test_a_missing_stage_fails_the_load_clearly_and_the_batch_already_there_stays(local_lake, snowflake):
    land_and_commit(local_lake, B1, [1, 2])
    load_batch("demo", "users", B1, snowflake, local_lake)
    land_and_commit(local_lake, B1, [1, 2, 3])
    with pytest.raises(SnowflakeLoadError, match=r"(?is)PUT .* failed .*stage.*(does not exist|not authorized)"):
        load_batch("demo", "users", B1, snowflake, local_lake, stage="NO_SUCH_STAGE")
    assert rows(snowflake, "SELECT count(*) FROM demo__users") == [(2,)]
    tables = rows(snowflake, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'BRONZE'")
    assert tables == [("DEMO__USERS",)], "the load table was dropped"


def test_a_file_the_copy_cannot_read_fails_the_load_and_the_batch_already_there_stays(local_lake, lake_root, snowflake):
    land_and_commit(local_lake, B1, [1, 2])
    load_batch("demo", "users", B1, snowflake, local_lake)
    land_and_commit(local_lake, B1, [1, 2, 3])
    (name,) = active_files(bronze_table(local_lake, "demo", "users"), B1)
    damaged = lake_root / "bronze/demo/users" / name
    damaged.write_bytes(damaged.read_bytes()[:-100])  # its footer gone: no longer Parquet
    # Snowflake names the file and the parse error; fakesnow answers HTTP 500
    with pytest.raises(SnowflakeLoadError, match=f"demo.users batch {B1} into .*: COPY INTO failed"):
        load_batch("demo", "users", B1, snowflake, local_lake)
    assert rows(snowflake, "SELECT count(*) FROM demo__users") == [(2,)]


def test_a_load_drops_the_load_tables_that_a_load_cut_off_a_day_ago_left_behind(local_lake, snowflake):
    from datetime import datetime

    land_and_commit(local_lake, B1, [1, 2])
    load_batch("demo", "users", B1, snowflake, local_lake)
    now = datetime.now(UTC)
    stale, running = "DEMO__USERS__LOAD_20261101T000000_0123ABCD", f"DEMO__USERS__LOAD_{now:%Y%m%dT%H%M%S}_4567CDEF"
    for name in (stale, running, "DEMO__USERS__LOADED"):
        rows(snowflake, f"CREATE TRANSIENT TABLE {name} (id NUMBER)")
    load_batch("demo", "users", B1, snowflake, local_lake)
    tables = rows(snowflake, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'BRONZE'")
    assert sorted(tables) == [("DEMO__USERS",), ("DEMO__USERS__LOADED",), (running,)]


class _Recording:
    """A connection whose cursors record every statement they execute."""

    def __init__(self, connection):
        self.connection, self.statements = connection, []

    def cursor(self):
        cursor, statements = self.connection.cursor(), self.statements

        class Cursor:
            def execute(self, sql, params=None):
                statements.append(sql)
                return cursor.execute(sql, params)

            def __getattr__(self, name):
                return getattr(cursor, name)

        return Cursor()


def test_an_external_stage_copies_a_batch_of_more_than_1000_files_under_nested_prefixes_in_copies_of_1000(
    local_lake, lake_root, snowflake, monkeypatch
):
    import re

    import pyarrow as pa
    import pyarrow.parquet as pq

    from sluice.lake.bronze import register_files
    from sluice.warehouse import snowflake_load

    # a driver's own folders inside the table (as an Airbyte S3 destination writes them)
    names = [f"airbyte/2026_11_20/{i // 100:02d}/{i}_0.parquet" for i in range(1001)] + ["airbyte/it's/x_0.parquet"]
    for i, name in enumerate(names):
        (lake_root / "bronze/demo/users" / name).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"id": [i], "email": [f"{i}@x.io"]}), lake_root / "bronze/demo/users" / name)
    register_files(local_lake, "demo", STREAM, B1, [local_lake.path("bronze", "demo", "users", n) for n in names])
    rows(snowflake, f"CREATE STAGE SLUICE_LAKE_S3 URL = 'file://{lake_root}/'")
    monkeypatch.setattr(snowflake_load, "stage_type", lambda lake: "external")  # the lake on S3's way

    recording = _Recording(snowflake)
    assert load_batch("demo", "users", B1, recording, local_lake, stage="SLUICE_LAKE_S3")["rows"] == 1002
    copies = [sql for sql in recording.statements if sql.startswith("COPY INTO")]
    listed = [re.findall(r"'((?:[^']|'')*)'", re.search(r"FILES = \((.*?)\) FILE_FORMAT", sql)[1]) for sql in copies]
    assert [len(files) for files in listed] == [1000, 2], "at most 1,000 names to a COPY"
    assert sorted(name.replace("''", "'") for files in listed for name in files) == sorted(names)
    assert all(" FROM @SLUICE_LAKE_S3/bronze/demo/users/ FILES = (" in sql for sql in copies)
    assert not any(sql.startswith(("PUT", "REMOVE")) for sql in recording.statements), "nothing uploaded"
    assert rows(snowflake, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM demo__users") == [
        (1002, 1002, 0, 1001)
    ]
