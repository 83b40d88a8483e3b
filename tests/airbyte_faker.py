"""The faker source as an Airbyte server would sync it: for the stand-in, and a declaration.

The records come from the real ``source-faker`` connector (the same config as the
embedded source), so a batch synced through the stand-in holds what ``make run`` lands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PATH_FORMAT = "${NAMESPACE}/${STREAM_NAME}/airbyte/${YEAR}_${MONTH}_${DAY}_${EPOCH}_"


def faker_streams(count: int | None = None) -> dict[str, dict[str, Any]]:
    """Per declared faker stream: its JSON schema and the records one sync reads."""
    from sluice.core.sources import load_source
    from sluice.ingest.local.protocol import configured_catalog, connector_executable, discover, read

    source = load_source("faker")
    config = {**source.connector_config, **({"count": count} if count else {})}
    executable = connector_executable(source.connector)
    catalog = discover(executable, config)
    declared = {stream.name for stream in source.streams}
    streams = {
        s["name"]: {"schema": s["json_schema"], "records": []} for s in catalog["streams"] if s["name"] in declared
    }
    configured = configured_catalog(catalog, {stream.name: stream.cursor_field for stream in source.streams})
    for message in read(executable, config, configured, []):
        if message.get("type") == "RECORD" and message["record"]["stream"] in streams:
            streams[message["record"]["stream"]]["records"].append(message["record"]["data"])
    return streams


def s3_connection(lake_root: str, endpoint: str, streams: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A stand-in connection whose S3 destination writes into the lake as Sluice asks."""
    bucket, _, prefix = lake_root.removeprefix("s3://").partition("/")
    return {
        "name": "faker → S3 lake",
        "destination": {
            "destinationId": "f1a6e0b2-0d5c-4a0e-9a53-8c1f5c1e2b77",
            "destinationType": "s3",
            "configuration": {
                "s3_bucket_name": bucket,
                "s3_bucket_path": f"{prefix}/bronze".lstrip("/"),
                "s3_path_format": PATH_FORMAT,
                "s3_endpoint": endpoint,
                "format": {"format_type": "Parquet", "compression_codec": "SNAPPY"},
            },
        },
        "namespaceFormat": "faker",
        "streams": streams,
    }


def snowflake_connection(server: dict[str, Any], database: str, streams: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A stand-in connection whose Snowflake destination writes into ``database`` on a
    fakesnow server, in the schema ``AIRBYTE_FAKER``."""
    return {
        "name": "faker → Snowflake",
        "destination": {
            "destinationId": "7d2b9e41-5c3a-4f8e-b1d6-0a9c3e5f2b18",
            "destinationType": "snowflake",
            "configuration": {
                "host": server["host"],
                "port": server["port"],
                "protocol": server["protocol"],
                "account": server["account"],
                "username": server["user"],
                "credentials": {"password": server["password"]},
                "database": database,
                "schema": "AIRBYTE_FAKER",
            },
        },
        "namespaceDefinition": "destination",
        "streams": streams,
    }


def airbyte_include(folder: Path, connection_id: str, poll_seconds: float = 1, destination: str = "lake") -> Path:
    """An include folder whose faker declaration uses the ``airbyte`` driver."""
    import yaml

    source_file = Path(__file__).resolve().parents[1] / "include" / "sources" / "faker.yml"
    declaration = yaml.safe_load(source_file.read_text())
    declaration.pop("connector", None)
    declaration.pop("config", None)
    declaration.update(
        driver="airbyte",
        description="The faker demo source, synced by an Airbyte server.",
        airbyte={"connection_id": connection_id, "poll_seconds": poll_seconds, "destination": destination},
    )
    (folder / "sources").mkdir(parents=True, exist_ok=True)
    (folder / "sources" / "faker.yml").write_text(yaml.safe_dump(declaration, sort_keys=False))
    return folder
