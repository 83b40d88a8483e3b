"""The ``local`` driver (see :mod:`sluice.ingest.contract`)."""

from __future__ import annotations

from typing import Any

from sluice.core.sources import SourceConfig
from sluice.ingest.contract import ContractError, Driver
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
        from sluice.core.compat import get_connection
        from sluice.ingest.local.sync import sync_batch

        secret = None
        if source.connection_id:
            connection = get_connection(source.connection_id)
            if connection is None:
                raise ContractError(f"source {source.name}: no Airflow connection {source.connection_id!r}")
            secret = connection.extra_dejson
        return sync_batch(source, batch, secret_config=secret, lake=lake)
