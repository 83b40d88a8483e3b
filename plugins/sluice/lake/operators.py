"""Airflow operators for the lake."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import BaseOperator

from sluice.batch import BATCH_ID_TEMPLATE


class BronzeCommitOperator(BaseOperator):
    """Commit one landed batch of a stream to its bronze Delta table.

    :param source: source declaration name (``include/sources/<source>.yml``)
    :param stream: stream of that source
    :param batch: batch id of the interval to commit (templated)
    """

    template_fields: Sequence[str] = ("source", "stream", "batch")
    ui_color = "#f5e1c9"

    def __init__(self, *, source: str, stream: str, batch: str = BATCH_ID_TEMPLATE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.stream = stream
        self.batch = batch

    def execute(self, context: Any) -> dict[str, Any]:
        from sluice.lake.bronze import commit_batch
        from sluice.sources import load_source

        stream = load_source(self.source).stream(self.stream)
        result = commit_batch(self.source, stream, self.batch)
        self.log.info(
            "bronze/%s/%s batch %s: %d rows, table version %d",
            self.source,
            self.stream,
            self.batch,
            result["rows"],
            result["version"],
        )
        return result
