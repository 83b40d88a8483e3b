"""Every driver by name, and the one Airflow task that lands a batch through any of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import BaseOperator

from sluice.core.batch import BATCH_ID_TEMPLATE
from sluice.core.sources import SourceConfig
from sluice.ingest.airbyte.driver import AirbyteDriver
from sluice.ingest.contract import Driver
from sluice.ingest.files.driver import FilesDriver
from sluice.ingest.local.driver import LocalDriver

DRIVERS: dict[str, type[Driver]] = {driver.name: driver for driver in (LocalDriver, AirbyteDriver, FilesDriver)}


def driver_for(source: SourceConfig) -> Driver:
    """The driver the source declares."""
    return DRIVERS[source.driver]()


def land_task(source: SourceConfig, task_id: str = "land") -> Any:
    """The task that lands a batch of ``source``: its driver's own, or :class:`LandOperator`."""
    return driver_for(source).land_task(source, task_id) or LandOperator(task_id=task_id, source=source.name)


class LandOperator(BaseOperator):
    """Land one batch of a source in the lake through its driver, on the worker.

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
        from sluice.lake.storage import open_lake

        source = load_source(self.source)
        manifests = driver_for(source).land(source, self.batch, open_lake())
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
