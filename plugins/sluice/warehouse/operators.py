"""Airflow operators for the warehouse."""

from __future__ import annotations

from typing import Any

from sluice.core.stream_operator import StreamBatchOperator


class WarehouseLoadOperator(StreamBatchOperator):
    """Load one batch of a bronze lake table into ``bronze.<source>__<stream>`` in the warehouse.

    Replaces the batch's rows in one transaction. ``SLUICE_WAREHOUSE`` chooses the
    warehouse: DuckDB (default) or Snowflake, through the Airflow connection
    ``SLUICE_SNOWFLAKE_CONN_ID`` (default ``snowflake_default``).
    """

    ui_color = "#d5f5c9"

    def execute(self, context: Any) -> dict[str, Any]:
        from sluice.warehouse.target import current

        result = current().load_batch(self.source, self.stream, self.batch)
        self.log.info("%s batch %s: %d rows", result["table"], self.batch, result["rows"])
        return result
