"""Airflow operators for ingestion: the local driver's sync, and the bronze commit of every landing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import BaseHook, BaseOperator

from sluice.core.batch import BATCH_ID_TEMPLATE
from sluice.core.stream_operator import StreamBatchOperator


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
        from sluice.core.sources import load_source
        from sluice.ingest.local.sync import sync_batch

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


class BronzeCommitOperator(StreamBatchOperator):
    """Commit one landed batch of a stream to its bronze Delta table ``bronze/<source>/<stream>``
    (then its index entries and the drop of erased people: :mod:`sluice.ingest.commit`)."""

    ui_color = "#f5e1c9"

    def execute(self, context: Any) -> dict[str, Any]:
        from sluice.core.sources import load_source
        from sluice.ingest.commit import commit_batch

        stream = load_source(self.source).stream(self.stream)
        result = commit_batch(self.source, stream, self.batch)
        self.log.info(
            "bronze/%s/%s batch %s: %d rows in %d registered file(s) of %d bytes, table version %d;"
            " %d replaced file(s) vacuumed",
            self.source,
            self.stream,
            self.batch,
            result["rows"],
            result["files"],
            result["bytes"],
            result["version"],
            result["vacuumed"],
        )
        return result
