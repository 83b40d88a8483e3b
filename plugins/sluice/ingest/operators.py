"""Airflow operators for ingestion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import BaseHook, BaseOperator

from sluice.batch import BATCH_ID_TEMPLATE


class LocalAirbyteSyncOperator(BaseOperator):
    """Run a source's Airbyte connector on the worker and land one batch in the lake.

    The embedded counterpart of ``AirbyteTriggerSyncOperator``: the connector (installed
    from PyPI in its own virtualenv) is run through the Airbyte protocol, resuming from
    the state the previous batch saved.

    :param source: name of the source declaration in ``include/sources/<source>.yml``
    :param batch: batch id of the interval to land (templated; the run's interval start)
    """

    template_fields: Sequence[str] = ("source", "batch")
    ui_color = "#c9e4f5"

    def __init__(self, *, source: str, batch: str = BATCH_ID_TEMPLATE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.batch = batch

    def execute(self, context: Any) -> dict[str, dict[str, int]]:
        from sluice.ingest.sync import sync_batch
        from sluice.sources import load_source

        source = load_source(self.source)
        secret_config = None
        if source.connection_id:
            secret_config = BaseHook.get_connection(source.connection_id).extra_dejson
        manifests = sync_batch(source, self.batch, secret_config=secret_config)
        for stream, manifest in manifests.items():
            self.log.info(
                "%s.%s batch %s: read %d, landed %d, quarantined %d, suppressed %d",
                source.name,
                stream,
                self.batch,
                manifest["read"],
                manifest["landed"],
                manifest["quarantined"],
                manifest.get("suppressed", 0),
            )
        return {
            stream: {key: manifest.get(key, 0) for key in ("read", "landed", "quarantined", "suppressed")}
            for stream, manifest in manifests.items()
        }
