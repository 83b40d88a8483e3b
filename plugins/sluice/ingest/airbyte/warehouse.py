"""An Airbyte connection that writes straight into Snowflake: check its tables, expose the batch.

Airbyte's Snowflake destination appends each sync's records to one table per stream
(``<schema>.<STREAM>``), every record carrying the job in ``_AIRBYTE_META:sync_id``.
After a sync, Sluice counts the job's records in those tables against the job's
``rowsSynced``, records which job is the batch (``BRONZE._SLUICE_AIRBYTE_JOBS``), and
keeps one view per stream, ``BRONZE.<SOURCE>__<STREAM>``: the destination's rows of the
recorded jobs, with the batch as ``_SLUICE_BATCH``. The dbt bronze sources read those
views as they read the tables a lake load fills, and nothing is copied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.core.sources import SourceConfig
from sluice.ingest.airbyte.destination import WarehouseDestination
from sluice.ingest.landing import LandingError
from sluice.warehouse.snowflake_load import ident
from sluice.warehouse.tables import warehouse_table

JOBS_TABLE = "_SLUICE_AIRBYTE_JOBS"


def check_job_tables(
    source: SourceConfig, destination: WarehouseDestination, job: Mapping[str, Any], batch: str, bronze: str = "BRONZE"
) -> dict[str, int]:
    """Count the job's records per stream, then publish the job as the batch's bronze.

    :param destination: where the destination writes the streams' tables
    :param bronze: the warehouse's bronze schema, where the views are
    :returns: per stream, the job's records
    :raises LandingError: the tables hold another count than the job reports (nothing is
        published: the views keep the batch as it was)
    """
    from sluice.warehouse.snowflake_hook import snowflake_connection

    job_id = int(job["jobId"])
    schema = destination.schema
    connection = snowflake_connection()
    try:
        cursor = connection.cursor()
        counts = {}
        for stream in source.streams:
            table = f"{ident(schema)}.{ident(stream.name)}"
            cursor.execute(f'SELECT count(*) FROM {table} WHERE "_AIRBYTE_META":sync_id = %s', (job_id,))
            counts[stream.name] = int(cursor.fetchone()[0])
        if sum(counts.values()) != int(job.get("rowsSynced") or 0):
            raise LandingError(
                f"Airbyte job {job_id} of source {source.name}, batch {batch}: the tables of {schema} hold {counts}"
                f" of its records, {sum(counts.values())} in all, but Airbyte reports {job.get('rowsSynced')} synced;"
                " nothing was published (the job's rows stay in those tables for inspection)"
            )
        jobs = f"{ident(bronze)}.{ident(JOBS_TABLE)}"
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {jobs} (SOURCE VARCHAR, BATCH VARCHAR, JOB_ID NUMBER(38,0))")
        for column in ("SCHEMA_NAME", "RAW_SCHEMA"):  # where the job wrote: what an erasure cleans
            cursor.execute(f"ALTER TABLE {jobs} ADD COLUMN IF NOT EXISTS {column} VARCHAR")
        cursor.execute(
            f"MERGE INTO {jobs} t USING (SELECT %s AS SOURCE, %s AS BATCH, %s AS JOB_ID, %s AS SCHEMA_NAME,"
            " %s AS RAW_SCHEMA) s ON t.SOURCE = s.SOURCE AND t.BATCH = s.BATCH"
            " WHEN MATCHED THEN UPDATE SET JOB_ID = s.JOB_ID, SCHEMA_NAME = s.SCHEMA_NAME, RAW_SCHEMA = s.RAW_SCHEMA"
            " WHEN NOT MATCHED THEN INSERT (SOURCE, BATCH, JOB_ID, SCHEMA_NAME, RAW_SCHEMA)"
            " VALUES (s.SOURCE, s.BATCH, s.JOB_ID, s.SCHEMA_NAME, s.RAW_SCHEMA)",
            (source.name, batch, job_id, schema, destination.raw_schema),
        )
        for stream in source.streams:
            view = f"{ident(bronze)}.{ident(warehouse_table(source.name, stream.name))}"
            cursor.execute(
                f"CREATE OR REPLACE VIEW {view} AS SELECT t.*, j.BATCH AS {ident('_sluice_batch')}"
                f" FROM {ident(schema)}.{ident(stream.name)} t JOIN {jobs} j"
                f" ON j.SOURCE = '{source.name}' AND t.\"_AIRBYTE_META\":sync_id = j.JOB_ID"
            )
        connection.commit()
        return counts
    finally:
        connection.close()


def destination_tables(
    cursor: Any, source: str, stream: str, present: Mapping[str, str], bronze: str = "BRONZE"
) -> list[tuple[str, str]]:
    """The tables a warehouse destination wrote the stream's records in, for every place a
    recorded job wrote: (``schema.table`` as the warehouse names it, ``typed`` or ``raw``).

    :param present: the warehouse's tables, ``schema.table`` in lower case -> as it names them
        (tables it does not hold, never written or dropped, are left out; the raw tables,
        ``<schema>_raw__stream_<stream>`` in the raw schema, are matched without regard to case)
    """
    if f"{bronze}.{JOBS_TABLE}".lower() not in present:
        return []
    cursor.execute(f"SELECT * FROM {ident(bronze)}.{ident(JOBS_TABLE)} WHERE SOURCE = %s", (source,))
    columns = [column[0].lower() for column in cursor.description]
    if "schema_name" not in columns:
        return []  # jobs recorded before the destination was: none to name
    found = set()
    for row in cursor.fetchall():
        job = dict(zip(columns, row, strict=True))
        if job["schema_name"] is None:
            continue
        for name, kind in (
            (f"{job['schema_name']}.{stream}", "typed"),
            (f"{job['raw_schema']}.{job['schema_name']}_raw__stream_{stream}", "raw"),
        ):
            if name.lower() in present:
                found.add((present[name.lower()], kind))
    return sorted(found)
