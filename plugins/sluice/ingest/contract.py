"""The driver contract: how a source's batch is read, whatever the source is.

A driver is given a source (its declaration), the batch (an interval's id) and the lake,
and ends at a **published landing**: per stream, Parquet files under the bronze table's
folder, in the layout and with the metadata columns of Airbyte's S3 destination, and a
manifest (:func:`sluice.ingest.landing.write_manifest`) that names them with the batch's
counts, where ``read = landed + quarantined + suppressed``. What cannot be landed is kept
under ``quarantine/<source>/`` with its reason; nothing half-written is ever published.

Everything after the landing is one pipeline that no driver re-implements
(:mod:`sluice.ingest.commit`, then the warehouse load and the checks). ``docs/drivers.md``
is the guide to writing one; ``tests/unit/test_driver_contract.py`` holds every driver to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from sluice.core.sources import SourceConfig
from sluice.lake.storage import Lake

#: What a published landing's manifest holds (per stream).
MANIFEST_KEYS = (
    "source",
    "stream",
    "batch",
    "attempt",
    "read",
    "landed",
    "quarantined",
    "suppressed",
    "bytes",
    "files",
)


class ContractError(ValueError):
    """A driver published a landing that breaks the contract: nothing of it is committed."""


def check_landing(manifest: Mapping[str, Any]) -> None:
    """Refuse a manifest that is incomplete or whose counts do not add up."""
    where = f"the landing of {manifest.get('source')}.{manifest.get('stream')} batch {manifest.get('batch')}"
    if missing := [key for key in MANIFEST_KEYS if key not in manifest]:
        raise ContractError(f"{where} lacks {missing}")
    read, landed, quarantined, suppressed = (manifest[k] for k in ("read", "landed", "quarantined", "suppressed"))
    if read != landed + quarantined + suppressed:
        raise ContractError(
            f"{where}: read {read} != landed {landed} + quarantined {quarantined} + suppressed {suppressed}"
        )
    if landed and not manifest["files"]:
        raise ContractError(f"{where}: {landed} rows landed in no file")


class Driver:
    """One way of reading a source's batch. A driver module defines a subclass, registered in
    :data:`sluice.ingest.drivers.DRIVERS`; a source declaration chooses it by ``name``."""

    name: ClassVar[str]

    def describe(self, source: SourceConfig) -> str:
        """What its land task does, for the DAG's documentation."""
        raise NotImplementedError

    def land(self, source: SourceConfig, batch: str, lake: Lake) -> dict[str, dict[str, Any]]:
        """Land the batch of every declared stream; the published manifest of each stream."""
        raise NotImplementedError

    def land_task(self, source: SourceConfig, task_id: str = "land") -> Any:
        """The Airflow task that lands a batch, for a driver that needs its own (one that
        waits in the triggerer); None: :class:`sluice.ingest.drivers.LandOperator` calls
        :meth:`land` on a worker."""
        return None
