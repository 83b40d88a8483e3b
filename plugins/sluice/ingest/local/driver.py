"""The ``local`` driver (see :mod:`sluice.ingest.contract`)."""

from __future__ import annotations

from typing import Any

from sluice.core.sources import SourceConfig
from sluice.ingest.contract import Driver
from sluice.lake.storage import Lake


class LocalDriver(Driver):
    """An Airbyte connector from PyPI, run by Sluice through the Airbyte protocol."""

    name = "local"

    def describe(self, source: SourceConfig) -> str:
        return (
            f"run `{source.connector}` from the state the previous batch saved, land the records once "
            f"as Parquet in `bronze/{source.name}/<stream>/_sluice_batch=<batch>/`"
        )

    def land(self, source: SourceConfig, batch: str, lake: Lake) -> dict[str, dict[str, Any]]:
        from airflow.providers.common.compat.sdk import BaseHook

        from sluice.ingest.local.sync import sync_batch

        # a missing connection is Airflow's own error, naming it
        secret = BaseHook.get_connection(source.connection_id).extra_dejson if source.connection_id else None
        return sync_batch(source, batch, secret_config=secret, lake=lake)
