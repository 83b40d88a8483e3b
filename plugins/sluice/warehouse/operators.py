"""Airflow operators for the warehouse."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import BaseOperator

from sluice.batch import BATCH_ID_TEMPLATE


class WarehouseLoadOperator(BaseOperator):
    """Load one batch of a bronze lake table into the warehouse's bronze schema.

    Replaces the batch's rows in ``bronze.<source>__<stream>`` in one transaction.

    :param source: source declaration name
    :param stream: stream of that source
    :param batch: batch id of the interval to load (templated)
    """

    template_fields: Sequence[str] = ("source", "stream", "batch")
    ui_color = "#d5f5c9"

    def __init__(self, *, source: str, stream: str, batch: str = BATCH_ID_TEMPLATE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.stream = stream
        self.batch = batch

    def execute(self, context: Any) -> dict[str, Any]:
        from sluice.warehouse.duckdb_load import load_batch

        result = load_batch(self.source, self.stream, self.batch)
        self.log.info("%s batch %s: %d rows", result["table"], self.batch, result["rows"])
        return result
