"""A source's batch from connector to landed files, with a scripted connector."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pyarrow.parquet as pq

from sluice.core.sources import SourceConfig, StreamConfig
from sluice.ingest.landing import landed_files, state_before
from sluice.ingest.local.sync import sync_batch

BATCH = "20261120T060000Z"
CATALOG = {
    "streams": [
        {
            "name": "items",
            "json_schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
            "supported_sync_modes": ["full_refresh", "incremental"],
            "default_cursor_field": ["id"],
        }
    ]
}


def scripted_connector(connectors_dir: Path, calls: Path) -> None:
    """A connector that logs each command and reads 3 items and a state."""
    records = "\n".join(
        json.dumps({"type": "RECORD", "record": {"stream": "items", "data": {"id": i}, "emitted_at": 1}})
        for i in range(3)
    )
    state = json.dumps(
        {
            "type": "STATE",
            "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "items"}, "stream_state": {"id": 2}}},
        }
    )
    path = connectors_dir / "source-items" / "bin" / "source-items"
    path.parent.mkdir(parents=True)
    path.write_text(
        f"""#!/bin/sh
echo "$1" >> {calls}
if [ "$1" = discover ]; then echo '{json.dumps({"type": "CATALOG", "catalog": CATALOG})}'; exit 0; fi
cat <<'END'
{records}
{state}
END
"""
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_sync_lands_saves_state_and_reuses_the_discovered_catalog(tmp_path, lake):
    calls = tmp_path / "calls.log"
    scripted_connector(tmp_path / "connectors", calls)
    source = SourceConfig(
        "items", "source-items", "", "data-platform", (StreamConfig("items", record_key="id"),), {"page_size": 10}
    )
    for _ in range(2):
        manifests = sync_batch(source, BATCH, lake, tmp_path / "connectors")
    assert manifests["items"]["landed"] == 3
    assert pq.read_table(landed_files(lake, "items", "items", BATCH), filesystem=lake.fs).column("id").to_pylist() == [
        0,
        1,
        2,
    ]
    assert state_before(lake, "items", "20261120T120000Z")[0]["stream"]["stream_state"] == {"id": 2}
    assert calls.read_text().split() == ["discover", "read", "read"]  # the catalog was kept

    changed = SourceConfig(**{**source.__dict__, "connector_config": {"page_size": 20}})
    sync_batch(changed, BATCH, lake, tmp_path / "connectors")
    assert calls.read_text().split()[-2:] == ["discover", "read"]  # new config, new catalog
    stored = lake.read_bytes(lake.path("state", "items", "catalog.json")).decode()
    assert "page_size" not in stored  # only a fingerprint of the config is kept
