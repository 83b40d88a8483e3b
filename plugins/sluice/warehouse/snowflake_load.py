"""Load a bronze batch into Snowflake: COPY INTO from a stage, then replace the batch atomically.

Table ``BRONZE.<SOURCE>__<STREAM>`` mirrors the lake table, partition column included.
The batch's files (those the bronze table's current version holds for it) are copied
into a load table, their row count is checked against the lake's, and one MERGE deletes
the batch from the bronze table and inserts the load table's rows: a rerun replaces
exactly that batch, and readers see the old batch or the new one.

Where the files come from: a lake on S3 is read through an external stage on its bucket
(``SLUICE_SNOWFLAKE_STAGE``, created once by ``include/snowflake/setup.sql``), naming the
batch's files relative to the table's folder (``FILES =``, at most 1,000 names to a COPY,
so a larger batch takes several COPY statements into the same load table); a lake in a
folder is uploaded (``PUT``) to the same stage name, an internal stage, under a prefix of
this load alone. ``SLUICE_SNOWFLAKE_STAGE_TYPE=internal``
uploads an S3 lake's files the same way, one at a time through the worker, for an account
where no storage integration may read the bucket.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from snowflake.connector.errors import Error as SnowflakeError

from sluice.core import config
from sluice.lake.files import BATCH_COLUMN, active_files, bronze_table, bronze_table_path
from sluice.lake.storage import Lake, open_lake
from sluice.warehouse.tables import warehouse_table

log = logging.getLogger(__name__)

REPLACE_MARKER = "_sluice_replace"  # a column of the MERGE's source only
#: the most file names one COPY's FILES option takes (Snowflake's limit)
FILES_PER_COPY = 1000
STALE_LOAD_TABLE_AGE = timedelta(days=1)


class SnowflakeLoadError(RuntimeError):
    """The batch was not loaded: a COPY rejected rows or loaded another count than the lake
    holds, a column's type differs, or Snowflake failed or stopped answering. The table
    holds the batch as before (or, failing after the MERGE, the new one whole)."""


def stage_type(lake: Lake) -> str:
    """``internal`` (files uploaded by PUT) or ``external`` (Snowflake reads the bucket)."""
    if lake.scheme == "file":
        return "internal"  # Snowflake cannot read a folder
    return config.snowflake_stage_type()


def _put(cursor: Any, lake: Lake, path: str, staged: str) -> None:
    """Upload one lake file to ``staged``; a file on S3 goes through a temporary copy."""
    if lake.scheme == "file":
        _query(cursor, f"PUT 'file://{path}' {staged} AUTO_COMPRESS = FALSE OVERWRITE = TRUE")
        return
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sluice-put-") as folder:
        local = os.path.join(folder, posixpath.basename(path))
        with lake.fs.open_input_stream(path, compression=None) as source, open(local, "wb") as target:
            shutil.copyfileobj(source, target, 8 << 20)
        _query(cursor, f"PUT 'file://{local}' {staged} AUTO_COMPRESS = FALSE OVERWRITE = TRUE")


def files_clauses(names: list[str]) -> list[str]:
    """``FILES = (…)`` options naming ``names`` (paths under the COPY's location, nested
    prefixes included), at most :data:`FILES_PER_COPY` to each."""
    quoted = ["'" + name.replace("'", "''") + "'" for name in names]
    return [
        f"FILES = ({', '.join(quoted[start : start + FILES_PER_COPY])})"
        for start in range(0, len(quoted), FILES_PER_COPY)
    ]


def ident(name: str) -> str:
    """A column or table name as Snowflake folds an unquoted one (upper case), quoted."""
    return '"' + name.upper().replace('"', '""') + '"'


def snowflake_type(arrow_type: pa.DataType) -> str:
    """The Snowflake column type that holds a Parquet column of ``arrow_type``."""
    t = arrow_type
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_integer(t):
        return "NUMBER(38,0)"
    if pa.types.is_floating(t):
        return "FLOAT"
    if pa.types.is_decimal(t):
        return f"NUMBER({t.precision},{t.scale})"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "VARCHAR"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP_TZ" if t.tz else "TIMESTAMP_NTZ"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "BINARY"
    return "VARIANT"  # structs, lists, maps: semi-structured


def _query(cursor: Any, sql: str, params: tuple = ()) -> list[tuple]:
    """The statement's rows; a failure, Snowflake's or the network's, names the statement."""
    log.debug("snowflake: %s", sql)
    try:
        cursor.execute(sql, params or None)
        return cursor.fetchall()
    except SnowflakeError as error:
        statement = " ".join(sql.split()[:2])
        query_id = error.sfqid or "none"
        raise SnowflakeLoadError(f"{statement} failed (query id {query_id}): {error.msg or error}") from error


def load_batch(
    source: str,
    stream: str,
    batch: str,
    connection: Any,
    lake: Lake | None = None,
    schema: str = "BRONZE",
    stage: str | None = None,
) -> dict[str, Any]:
    """Replace ``batch`` in the Snowflake table with the lake table's partition.

    :param connection: an open Snowflake DB-API connection (``SnowflakeHook.get_conn()``)
    :param schema: the bronze schema, in the connection's database
    :param stage: the stage holding or reaching the lake (default ``SLUICE_SNOWFLAKE_STAGE``)
    :returns: the table and the batch's rows in it
    :raises SnowflakeLoadError: COPY rejected rows or loaded a count other than the lake's
    """
    lake = lake or open_lake()
    stage = stage or config.snowflake_stage()
    table_path = bronze_table_path(lake, source, stream)
    table = bronze_table(lake, source, stream)
    files = sorted(active_files(table, batch))
    if not files:
        raise LookupError(f"bronze table {lake.uri(table_path)} holds no batch {batch}")
    actions = pa.table(table.get_add_actions(flatten=True)).select(["path", "num_records"]).to_pylist()
    expected = sum(action["num_records"] for action in actions if action["path"] in files)
    fields = [field for field in table.to_pyarrow_dataset().schema if field.name != BATCH_COLUMN]
    definition = ", ".join(f"{ident(field.name)} {snowflake_type(field.type)}" for field in fields)
    target = f"{ident(schema)}.{ident(warehouse_table(source, stream))}"
    started = datetime.now(UTC)
    load_id = f"{started:%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}"
    load_name = f"{warehouse_table(source, stream)}__load_{load_id}".upper()
    load_table = f"{ident(schema)}.{ident(load_name)}"
    cursor = connection.cursor()
    staged, purged = None, False
    try:
        if stage_type(lake) == "internal":
            staged = f"@{stage}/{source}/{stream}/{batch}/{load_id}/"
            for name in files:
                _put(cursor, lake, posixpath.join(table_path, name), staged)
            # the uploaded copies go once loaded (PURGE); never on the lake's own stage
            location, clauses = staged, ["PURGE = TRUE"]
        else:
            # the batch's files may be in its partition folder or a driver's own folder
            location, clauses = f"@{stage}/{lake.relative(table_path)}/", files_clauses(files)
        _create_or_widen(cursor, target, fields, definition)
        _drop_stale_load_tables(cursor, schema, warehouse_table(source, stream), started)
        _query(cursor, f"CREATE TRANSIENT TABLE {load_table} ({definition})")
        results = []
        for clause in clauses:  # all into the load table: the MERGE below is the one visible step
            results += _query(
                cursor,
                f"COPY INTO {load_table} FROM {location} {clause} FILE_FORMAT = (TYPE = PARQUET)"
                " MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE FORCE = TRUE ON_ERROR = ABORT_STATEMENT",
            )
        purged = True  # PURGE removed the uploaded files, loaded or not
        _check_copy(results, expected)
        rows = _replace_batch(cursor, target, load_table, fields, batch)
    except SnowflakeLoadError as error:
        raise SnowflakeLoadError(f"{source}.{stream} batch {batch} into {target}: {error}") from error
    finally:
        leftovers = [f"DROP TABLE IF EXISTS {load_table}"]
        if staged and not purged:  # a COPY that failed purged nothing
            leftovers.append(f"REMOVE {staged}")
        for cleanup in leftovers:
            try:
                _query(cursor, cleanup)
            except Exception:  # the load's outcome stands; leftovers are named in the log
                log.warning("could not clean up after the load: %s", cleanup, exc_info=True)
        cursor.close()
    return {"table": f"{schema}.{warehouse_table(source, stream)}".upper(), "rows": rows}


def _replace_batch(cursor: Any, target: str, load_table: str, fields: list[pa.Field], batch: str) -> int:
    """Delete ``batch`` from ``target`` and insert the load table's rows as ``batch``, in one
    statement: a MERGE is atomic on its own, and a client cut off mid-way leaves no open
    transaction holding the table's lock (Snowflake runs a submitted statement to its end).

    The source is the load table's rows plus one marker row for the batch; the marker
    matches the batch's rows already there (deleted), the others match nothing (inserted).
    """
    columns = [ident(field.name) for field in fields]
    marker, batch_column = ident(REPLACE_MARKER), ident(BATCH_COLUMN)
    nulls = ", ".join("NULL" for _ in columns)
    ((inserted, _deleted),) = _query(
        cursor,
        f"MERGE INTO {target} t USING ("
        f" SELECT {', '.join(columns)}, %s AS {batch_column}, FALSE AS {marker} FROM {load_table}"
        f" UNION ALL SELECT {nulls}, %s, TRUE) s"
        f" ON s.{marker} AND t.{batch_column} = s.{batch_column}"
        " WHEN MATCHED THEN DELETE"
        f" WHEN NOT MATCHED AND NOT s.{marker} THEN INSERT ({', '.join(columns)}, {batch_column})"
        f" VALUES ({', '.join('s.' + c for c in columns)}, s.{batch_column})",
        (batch, batch),
    )
    return int(inserted)


def _drop_stale_load_tables(cursor: Any, schema: str, table: str, now: datetime) -> None:
    """Drop the load tables of ``table`` that a load cut off from Snowflake could not drop,
    once older than ``STALE_LOAD_TABLE_AGE`` (a younger one may belong to a load running now)."""
    pattern = re.compile(re.escape(f"{table}__load_".upper()) + r"(\d{8}T\d{6})_[0-9A-F]{8}")
    names = _query(
        cursor,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_name LIKE %s",
        (schema.upper(), f"{table}__LOAD_%".upper()),
    )
    for (name,) in names:
        match = pattern.fullmatch(name.upper())
        created = match and datetime.strptime(match[1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        if created and now - created > STALE_LOAD_TABLE_AGE:
            log.warning("dropping %s.%s, left by a load that could not drop it", schema, name)
            _query(cursor, f"DROP TABLE IF EXISTS {ident(schema)}.{ident(name)}")


def _create_or_widen(cursor: Any, target: str, fields: list[pa.Field], definition: str) -> None:
    """Create the bronze table (``definition``: its columns but the batch's), or add the
    columns the lake gained since.

    :raises SnowflakeLoadError: a column the table holds as another type than the lake's,
        before anything changed (a MERGE that failed half-way would be rolled back, but
        a clear reason beats a conversion error)
    """
    _query(cursor, f"CREATE TABLE IF NOT EXISTS {target} ({definition}, {ident(BATCH_COLUMN)} VARCHAR)")
    existing = {row[0].upper(): row[1] for row in _query(cursor, f"DESCRIBE TABLE {target}")}
    for field in fields:
        wanted = snowflake_type(field.type)
        held = existing.get(field.name.upper())
        if held is None:
            _query(cursor, f"ALTER TABLE {target} ADD COLUMN {ident(field.name)} {wanted}")
        elif _base_type(held) != _base_type(wanted):
            raise SnowflakeLoadError(
                f"{target}.{ident(field.name)} is {held} but the lake holds {wanted} ({field.type}):"
                " change the column or the source; nothing was replaced"
            )


def _base_type(snowflake_type_name: str) -> str:
    """``NUMBER(38,0)`` → ``NUMBER``: precision, scale and length aside."""
    return snowflake_type_name.split("(", 1)[0].strip().upper()


def _check_copy(results: list[tuple], expected: int) -> None:
    """COPY's per-file rows: (file, status, rows_parsed, rows_loaded, ..., first_error, ...)."""
    files = [row for row in results if len(row) > 3]  # no file matched: one message row
    problems = [row for row in files if str(row[1]).upper() != "LOADED"]
    loaded = sum(int(row[3] or 0) for row in files)
    if problems:
        first = problems[0]
        reason = first[6] if len(first) > 6 else None
        raise SnowflakeLoadError(f"COPY rejected {first[0]} ({first[1]}): {reason}; nothing was replaced")
    if loaded != expected:
        raise SnowflakeLoadError(f"COPY loaded {loaded} rows but the lake holds {expected}; nothing was replaced")
