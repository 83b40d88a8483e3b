"""Helpers of the files driver's tests: a ``files`` source declared in a tmp folder, files
dropped in its inbox, a batch landed, what it landed and quarantined."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

BATCH = "20261120T000000Z"
LATER = "20261120T060000Z"


class Inbox:
    """The source ``co`` of the files driver, its lake in ``tmp_path``."""

    def __init__(self, tmp_path: Path, monkeypatch: Any, streams: dict[str, dict[str, Any]], lake: Any = None) -> None:
        from sluice.lake.storage import open_lake

        self.sources = tmp_path / "include" / "sources"
        self.sources.mkdir(parents=True)
        monkeypatch.setenv("SLUICE_INCLUDE_DIR", str(tmp_path / "include"))
        monkeypatch.setenv("SLUICE_DATA_DIR", str(tmp_path / "data"))
        self.root = tmp_path / "lake"
        if lake is None:
            monkeypatch.setenv("SLUICE_LAKE_ROOT", str(self.root))
        self.lake = lake or open_lake(str(self.root))
        self.declare(streams)

    def declare(self, streams: dict[str, dict[str, Any]]) -> None:
        (self.sources / "co.yml").write_text(json.dumps({"driver": "files", "streams": streams}))

    def source(self) -> Any:
        from sluice.core.sources import load_source

        return load_source("co")

    def drop(self, stream: str, name: str, data: bytes | str) -> Path:
        """Write a file into the stream's inbox; its path, when the lake is a folder."""
        path = self.lake.path("inbox", "co", stream, name)
        data = data.encode() if isinstance(data, str) else data
        if self.lake.scheme == "file":
            self.lake.write_bytes(path, data)
        else:  # as an uploader writes it: pyarrow would compress a .gz name once more
            with self.lake.fs.open_output_stream(path, compression=None) as out:
                out.write(data)
        return Path(path)

    def land(self, batch: str = BATCH) -> dict[str, dict[str, Any]]:
        from sluice.ingest.contract import check_landing
        from sluice.ingest.drivers import driver_for

        source = self.source()
        manifests = driver_for(source).land(source, batch, self.lake)
        for manifest in manifests.values():
            check_landing(manifest)
        return manifests

    def rows(self, manifest: dict[str, Any]) -> list[dict[str, Any]]:
        """The data columns of the rows a manifest landed."""
        rows = []
        for name in manifest["files"]:
            table = pq.read_table(self.lake.path(name), filesystem=self.lake.fs)
            keep = [c for c in table.column_names if not c.startswith("_airbyte")]
            rows.extend(table.select(keep).to_pylist())
        return rows

    def quarantined(self, stream: str, batch: str = BATCH) -> list[dict[str, Any]]:
        """Reason and data of the batch's quarantined records of ``stream``."""
        from sluice.ingest.landing import QUARANTINE_FILE, quarantine_folder

        path = f"{quarantine_folder(self.lake, 'co', stream, batch)}/{QUARANTINE_FILE}"
        if not self.lake.exists(path):
            return []
        return pq.read_table(path, columns=["_sluice_reason", "_airbyte_data"], filesystem=self.lake.fs).to_pylist()
