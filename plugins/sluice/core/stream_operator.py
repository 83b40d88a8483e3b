"""Base of the operators that act on one batch of one source stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import BaseOperator

from sluice.core.batch import BATCH_ID_TEMPLATE


class StreamBatchOperator(BaseOperator):
    """An operator over one batch of one declared stream.

    :param source: source declaration name (``include/sources/<source>.yml``)
    :param stream: stream of that source
    :param batch: batch id of the interval to act on (templated; the run's interval start)
    """

    template_fields: Sequence[str] = ("source", "stream", "batch")

    def __init__(self, *, source: str, stream: str, batch: str = BATCH_ID_TEMPLATE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.stream = stream
        self.batch = batch
