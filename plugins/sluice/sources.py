"""Source declarations: one YAML file per source under ``include/sources/``.

A declaration names the Airbyte connector, its non-secret config, and per stream the
record key (what identifies a record) and optionally the data-subject key (what
identifies a person, used by erasure). Secrets never live here: ``connection_id``
names an Airflow connection whose extra JSON is merged into the config at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice import config


class SourceConfigError(ValueError):
    """A source declaration is missing or malformed."""


@dataclass(frozen=True)
class StreamConfig:
    name: str
    record_key: str
    cursor_field: str | None = None
    subject_key: str | None = None


@dataclass(frozen=True)
class SourceConfig:
    name: str
    connector: str
    description: str
    owner: str
    streams: tuple[StreamConfig, ...]
    connector_config: dict[str, Any] = field(default_factory=dict)
    connection_id: str | None = None

    def stream(self, name: str) -> StreamConfig:
        for stream in self.streams:
            if stream.name == name:
                return stream
        raise SourceConfigError(f"source {self.name!r} declares no stream {name!r}")

    @property
    def asset_name(self) -> str:
        """Asset updated when a batch of this source is in the lake and warehouse.

        Scheme-less on purpose: a URI scheme makes Airflow load every provider's asset
        handlers (boto3 among them) in each DAG-parsing process, ~0.5 s per file.
        """
        return f"sluice.bronze.{self.name}"


def load_source(name: str, directory: Path | None = None) -> SourceConfig:
    """Read and validate ``<directory>/<name>.yml``."""
    import yaml

    path = (directory or config.sources_dir()) / f"{name}.yml"
    if not path.is_file():
        raise SourceConfigError(f"no source declaration at {path}")
    raw = yaml.safe_load(path.read_text()) or {}
    missing = [key for key in ("connector", "streams") if not raw.get(key)]
    if missing:
        raise SourceConfigError(f"{path}: missing required keys {missing}")
    streams = []
    for stream_name, spec in raw["streams"].items():
        spec = spec or {}
        if not spec.get("record_key"):
            raise SourceConfigError(f"{path}: stream {stream_name!r} has no record_key")
        streams.append(
            StreamConfig(
                name=stream_name,
                record_key=spec["record_key"],
                cursor_field=spec.get("cursor_field"),
                subject_key=spec.get("subject_key"),
            )
        )
    return SourceConfig(
        name=raw.get("name", name),
        connector=raw["connector"],
        description=raw.get("description", "").strip(),
        owner=raw.get("owner", "data-platform"),
        streams=tuple(streams),
        connector_config=raw.get("config") or {},
        connection_id=raw.get("connection_id"),
    )


def source_names(directory: Path | None = None) -> list[str]:
    """Names of all declared sources, in a stable order."""
    return sorted(path.stem for path in (directory or config.sources_dir()).glob("*.yml"))
