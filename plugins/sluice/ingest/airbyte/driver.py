"""The ``airbyte`` driver (see :mod:`sluice.ingest.contract`)."""

from __future__ import annotations

from typing import Any

from sluice.core.sources import SourceConfig
from sluice.ingest.contract import Driver
from sluice.lake.storage import Lake


class AirbyteDriver(Driver):
    """A connection synced by an Airbyte server; its S3 destination writes the files (or its
    Snowflake destination the warehouse's tables: then there is no lake landing)."""

    name = "airbyte"

    def describe(self, source: SourceConfig) -> str:
        connection = source.airbyte.connection_id  # the declaration's schema requires it
        if source.writes_warehouse:
            return (
                f"trigger a sync of Airbyte connection `{connection}`, wait for it, and check "
                "that the tables its Snowflake destination wrote hold the job's records"
            )
        return (
            f"trigger a sync of Airbyte connection `{connection}`, wait for it, take the "
            f"Parquet files its S3 destination wrote under `bronze/{source.name}/<stream>/airbyte/` "
            "and check them against the job's record count"
        )

    def land(self, source: SourceConfig, batch: str, lake: Lake) -> dict[str, dict[str, Any]]:
        """Blocking: sync, wait on this process, collect (the DAG's task waits in the triggerer)."""
        from sluice.ingest.landing import read_manifest

        operator = self.land_task(source, deferrable=False, batch=batch)
        operator._opened_lake = lake
        operator.execute({})
        return {stream.name: read_manifest(lake, source.name, stream.name, batch) for stream in source.streams}

    def land_task(self, source: SourceConfig, task_id: str = "land", **kwargs: Any) -> Any:
        from sluice.ingest.airbyte.operators import AirbyteSyncOperator

        # passed, not looked up by the operator: the declaration is read once per DAG parse
        declared = source.airbyte
        return AirbyteSyncOperator(
            task_id=task_id,
            source=source.name,
            connection_id=declared.connection_id,
            airbyte_conn_id=declared.conn_id,
            wait_seconds=declared.poll_seconds,
            **kwargs,
        )
