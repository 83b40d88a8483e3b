"""The ``files`` driver (see :mod:`sluice.ingest.contract`)."""

from __future__ import annotations

from typing import Any

from sluice.core.sources import SourceConfig
from sluice.ingest.contract import Driver
from sluice.lake.storage import Lake, LakeAccessError


class FilesDriver(Driver):
    """JSON, CSV and XML files from the lake's inbox, each taken once."""

    name = "files"

    def describe(self, source: SourceConfig) -> str:
        return (
            f"take the files of `inbox/{source.name}/<stream>/` no batch took (by path and content hash), "
            f"land their records as Parquet in `bronze/{source.name}/<stream>/_sluice_batch=<batch>/`"
        )

    def land(self, source: SourceConfig, batch: str, lake: Lake) -> dict[str, dict[str, Any]]:
        from sluice.ingest.files.batch import land_files

        try:
            return land_files(source, batch, lake)
        except OSError as error:  # the store failed: the listing, a hash, the landing's writes
            what = f"files batch {batch} of {source.name}: the lake at {lake.uri(lake.root)} failed"
            raise LakeAccessError(f"{what}: {error}") from error
