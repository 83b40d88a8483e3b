"""One batch of one source: connector -> landed Parquet (plain Python, no Airflow)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from sluice.core import config
from sluice.core.sources import SourceConfig
from sluice.ingest.landing import BatchLanding, state_before
from sluice.ingest.local.protocol import ConnectorError, configured_catalog, connector_executable, discover, read
from sluice.ingest.schema import stream_schema
from sluice.lake.storage import Lake, open_lake

log = logging.getLogger(__name__)


def stored_catalog(
    source: SourceConfig, executable: Path, connector_config: dict[str, Any], lake: Lake
) -> dict[str, Any]:
    """The connector's catalog, discovered again only when it may have changed.

    Like a connection's catalog on an Airbyte server, it is kept (``state/<source>/
    catalog.json``) and reused while the connector install and its config are the same
    and it is younger than ``SLUICE_CATALOG_MAX_AGE_HOURS``: ``discover`` starts the
    connector once more, seconds per batch. Only a hash of the config is stored.
    """
    fingerprint = hashlib.sha256(
        json.dumps(
            {"executable": str(executable), "installed": executable.stat().st_mtime_ns, "config": connector_config},
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()
    path = lake.path("state", source.name, "catalog.json")
    stored = lake.read_json(path) or {}
    young = time.time() - stored.get("discovered_at", 0) < config.catalog_max_age_hours() * 3600
    if stored.get("fingerprint") == fingerprint and young:
        return stored["catalog"]
    catalog = discover(executable, connector_config)
    stored = {"fingerprint": fingerprint, "discovered_at": time.time(), "catalog": catalog}
    lake.write_bytes(path, json.dumps(stored).encode())
    return catalog


def _state_key(state: dict[str, Any]) -> tuple[str, ...]:
    kind = state.get("type", "LEGACY")
    if kind == "STREAM":
        descriptor = state["stream"]["stream_descriptor"]
        return (kind, descriptor.get("namespace") or "", descriptor["name"])
    return (kind,)


def sync_batch(
    source: SourceConfig,
    batch: str,
    lake: Lake | None = None,
    connectors_dir: Path | None = None,
    secret_config: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Read the source from the state its previous batch left and land ``batch``.

    :param secret_config: config merged over the declared one (credentials from a connection)
    :returns: per stream, the landing manifest (read, landed, quarantined, files)
    """
    lake = lake or open_lake()
    executable = connector_executable(source.connector, connectors_dir)
    connector_config = {**source.connector_config, **(secret_config or {})}
    catalog = stored_catalog(source, executable, connector_config, lake)
    json_schemas = {stream["name"]: stream["json_schema"] for stream in catalog.get("streams", [])}
    missing = [s.name for s in source.streams if s.name not in json_schemas]
    if missing:
        raise ConnectorError(f"{source.connector} offers no streams {missing}; it has {sorted(json_schemas)}")
    streams = {s.name: (s, stream_schema(json_schemas[s.name])) for s in source.streams}
    catalog = configured_catalog(catalog, {s.name: s.cursor_field for s in source.streams})
    state = state_before(lake, source.name, batch)
    log.info("landing %s batch %s from %d saved state message(s)", source.name, batch, len(state))

    landing = BatchLanding(lake, source.name, batch, streams)
    latest_state: dict[tuple[str, ...], dict[str, Any]] = {}
    try:
        for message in read(executable, connector_config, catalog, state):
            kind = message.get("type")
            if kind == "RECORD":
                landing.add(message["record"])
            elif kind == "STATE":
                latest_state[_state_key(message["state"])] = message["state"]
        return landing.publish(list(latest_state.values()))
    except BaseException:
        landing.abort()
        raise
