"""One batch of one source: connector -> landed Parquet (plain Python, no Airflow)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sluice import config
from sluice.ingest.landing import BatchLanding, state_before
from sluice.ingest.protocol import ConnectorError, configured_catalog, connector_executable, discover, read
from sluice.ingest.schema import stream_schema
from sluice.sources import SourceConfig

log = logging.getLogger(__name__)


def _state_key(state: dict[str, Any]) -> tuple[str, ...]:
    kind = state.get("type", "LEGACY")
    if kind == "STREAM":
        descriptor = state["stream"]["stream_descriptor"]
        return (kind, descriptor.get("namespace") or "", descriptor["name"])
    return (kind,)


def sync_batch(
    source: SourceConfig,
    batch: str,
    lake_root: Path | None = None,
    connectors_dir: Path | None = None,
    secret_config: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Read the source from the state its previous batch left and land ``batch``.

    :param secret_config: config merged over the declared one (credentials from a connection)
    :returns: per stream, the landing manifest (read, landed, quarantined, files)
    """
    lake_root = lake_root or config.lake_root()
    executable = connector_executable(source.connector, connectors_dir)
    connector_config = {**source.connector_config, **(secret_config or {})}
    catalog = discover(executable, connector_config)
    json_schemas = {stream["name"]: stream["json_schema"] for stream in catalog.get("streams", [])}
    missing = [s.name for s in source.streams if s.name not in json_schemas]
    if missing:
        raise ConnectorError(f"{source.connector} offers no streams {missing}; it has {sorted(json_schemas)}")
    streams = {s.name: (s, stream_schema(json_schemas[s.name])) for s in source.streams}
    catalog = configured_catalog(catalog, {s.name: s.cursor_field for s in source.streams})
    state = state_before(lake_root, source.name, batch)
    log.info("landing %s batch %s from %d saved state message(s)", source.name, batch, len(state))

    landing = BatchLanding(lake_root, source.name, batch, streams)
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
