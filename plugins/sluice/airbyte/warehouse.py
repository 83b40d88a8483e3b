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

from sluice.ingest.landing import LandingError
from sluice.sources import SourceConfig
from sluice.warehouse.snowflake_load import ident
from sluice.warehouse.tables import warehouse_table

JOBS_TABLE = "_SLUICE_AIRBYTE_JOBS"


def check_job_tables(
    source: SourceConfig, schema: str, job: Mapping[str, Any], batch: str, bronze: str = "BRONZE"
) -> dict[str, int]:
    """Count the job's records per stream, then publish the job as the batch's bronze.

    :param schema: the schema the destination writes the streams' tables in
    :param bronze: the warehouse's bronze schema, where the views are
    :returns: per stream, the job's records
    :raises LandingError: the tables hold another count than the job reports (nothing is
        published: the views keep the batch as it was)
    """
    from sluice.warehouse.snowflake_hook import snowflake_connection

    job_id = int(job["jobId"])
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
        cursor.execute(
            f"MERGE INTO {jobs} t USING (SELECT %s AS SOURCE, %s AS BATCH, %s AS JOB_ID) s"
            " ON t.SOURCE = s.SOURCE AND t.BATCH = s.BATCH"
            " WHEN MATCHED THEN UPDATE SET JOB_ID = s.JOB_ID"
            " WHEN NOT MATCHED THEN INSERT (SOURCE, BATCH, JOB_ID) VALUES (s.SOURCE, s.BATCH, s.JOB_ID)",
            (source.name, batch, job_id),
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
