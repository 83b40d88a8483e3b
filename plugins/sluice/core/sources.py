"""Source declarations: one YAML file per source under ``include/sources/``.

A declaration names the driver that lands the source's batches and, per stream, the
record key (what identifies a record) and optionally the data-subject key (what
identifies a person, used by erasure). Drivers:

- ``local`` (the default): Sluice runs the Airbyte ``connector`` itself, with the
  declared non-secret ``config``; ``connection_id`` names an Airflow connection whose
  extra JSON is merged into the config at run time.
- ``airbyte``: an Airbyte server syncs the connection ``airbyte.connection_id``, reached
  through the Airflow connection ``airbyte.conn_id``; its destination writes into the
  lake (``airbyte.destination: lake``) or straight into the warehouse (``warehouse``).

Secrets never live here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.core import config
from sluice.core.thresholds import DEFAULTS, CheckConfigError, StreamChecks, parse_checks


class SourceConfigError(ValueError):
    """A source declaration is missing or malformed."""


@dataclass(frozen=True)
class StreamConfig:
    """One stream of a source.

    :param record_key: the column that identifies a record
    :param cursor_field: the column incremental syncs resume from
    :param subject_key: the column that identifies the person a record is about (the
        erasure index is kept on it)
    :param identifiers: every column that identifies that person, by identifier type
        (``{email: email, id: user_id}``): erasure resolves one identifier of a person to
        the others through them; the subject key is one of them
    :param pii: the columns that hold personal data, erased and verified with the rows
    :param checks: thresholds of the per-batch checks (:mod:`sluice.core.thresholds`)
    """

    name: str
    record_key: str
    cursor_field: str | None = None
    subject_key: str | None = None
    identifiers: tuple[tuple[str, str], ...] = ()
    pii: tuple[str, ...] = ()
    checks: StreamChecks = DEFAULTS

    @property
    def identifier_types(self) -> dict[str, str]:
        """Column -> identifier type."""
        return dict(self.identifiers)


DRIVERS = ("local", "airbyte")
AIRBYTE_DESTINATIONS = ("lake", "warehouse")


@dataclass(frozen=True)
class AirbyteConnection:
    """Where an ``airbyte`` source's syncs run.

    :param connection_id: the Airbyte connection's id (a UUID, from its URL in Airbyte's UI)
    :param conn_id: the Airflow connection of the Airbyte API
    :param destination: ``lake`` when the connection's destination is the S3 lake (Parquet
        files Sluice registers in bronze), ``warehouse`` when it writes the warehouse's tables
    :param poll_seconds: seconds between two looks at a running sync
    """

    connection_id: str
    conn_id: str = "airbyte_default"
    destination: str = "lake"
    poll_seconds: float = 30


@dataclass(frozen=True)
class SourceConfig:
    name: str
    connector: str
    description: str
    owner: str
    streams: tuple[StreamConfig, ...]
    connector_config: dict[str, Any] = field(default_factory=dict)
    connection_id: str | None = None
    driver: str = "local"
    airbyte: AirbyteConnection | None = None
    #: free-form annotations; ``owner`` and ``channel`` route the source's alerts
    meta: dict[str, Any] = field(default_factory=dict)

    def stream(self, name: str) -> StreamConfig:
        for stream in self.streams:
            if stream.name == name:
                return stream
        raise SourceConfigError(f"source {self.name!r} declares no stream {name!r}")

    @property
    def writes_warehouse(self) -> bool:
        """Whether an Airbyte connection writes the source straight into the warehouse's
        tables (no lake copy: its bronze tables are views over them)."""
        return self.airbyte is not None and self.airbyte.destination == "warehouse"

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
    if not isinstance(raw, dict):
        raise SourceConfigError(f"{path}: expected a mapping of keys, got {type(raw).__name__}")
    driver = raw.get("driver", "local")
    if driver not in DRIVERS:
        raise SourceConfigError(f"{path}: driver {driver!r} is not one of {list(DRIVERS)}")
    required = ["streams", "connector"] if driver == "local" else ["streams", "airbyte"]
    missing = [key for key in required if not raw.get(key)]
    if missing:
        raise SourceConfigError(f"{path}: missing required keys {missing} (driver {driver})")
    streams = []
    for stream_name, spec in raw["streams"].items():
        spec = spec or {}
        if not spec.get("record_key"):
            raise SourceConfigError(f"{path}: stream {stream_name!r} has no record_key")
        streams.append(_stream(stream_name, spec, path))
    return SourceConfig(
        name=raw.get("name", name),
        connector=raw.get("connector") or "",
        description=raw.get("description", "").strip(),
        owner=raw.get("owner", "data-platform"),
        streams=tuple(streams),
        connector_config=raw.get("config") or {},
        connection_id=raw.get("connection_id"),
        driver=driver,
        airbyte=_airbyte_connection(raw["airbyte"], path) if driver == "airbyte" else None,
        meta=_meta(raw.get("meta"), path),
    )


def _meta(meta: Any, path: Path) -> dict[str, Any]:
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise SourceConfigError(f"{path}: meta must be a mapping, e.g. {{owner: '<@U024BE7LH>', channel: '#data'}}")
    return meta


STREAM_KEYS = {"record_key", "cursor_field", "subject_key", "identifiers", "pii", "checks"}


def _stream(name: str, spec: dict[str, Any], path: Path) -> StreamConfig:
    """One stream's declaration, its personal-data keys checked."""
    where = f"{path}: stream {name!r}"
    if unknown := sorted(set(spec) - STREAM_KEYS):
        raise SourceConfigError(f"{where} has unknown keys {unknown}")
    subject_key = spec.get("subject_key")
    identifiers = spec.get("identifiers") or {}
    pii = spec.get("pii") or []
    if not isinstance(identifiers, dict) or not all(isinstance(v, str) and v for v in identifiers.values()):
        raise SourceConfigError(f"{where}: identifiers maps columns to identifier types, e.g. {{id: user_id}}")
    if not isinstance(pii, list) or not all(isinstance(column, str) for column in pii):
        raise SourceConfigError(f"{where}: pii lists the columns that hold personal data")
    if (identifiers or pii) and not subject_key:
        raise SourceConfigError(f"{where} declares personal data but no subject_key (the column naming the person)")
    if subject_key:
        identifiers = {subject_key: subject_key, **identifiers}
    try:
        checks = parse_checks(spec.get("checks"), where)
    except CheckConfigError as error:
        raise SourceConfigError(str(error)) from error
    return StreamConfig(
        name=name,
        record_key=spec["record_key"],
        cursor_field=spec.get("cursor_field"),
        subject_key=subject_key,
        identifiers=tuple(sorted(identifiers.items())),
        pii=tuple(pii),
        checks=checks,
    )


def _airbyte_connection(spec: Any, path: Path) -> AirbyteConnection:
    if not isinstance(spec, dict) or not spec.get("connection_id"):
        raise SourceConfigError(f"{path}: airbyte needs connection_id, the Airbyte connection's id")
    unknown = sorted(set(spec) - {"connection_id", "conn_id", "destination", "poll_seconds"})
    if unknown:
        raise SourceConfigError(f"{path}: airbyte has unknown keys {unknown}")
    destination = spec.get("destination", "lake")
    if destination not in AIRBYTE_DESTINATIONS:
        raise SourceConfigError(
            f"{path}: airbyte destination {destination!r} is not one of {list(AIRBYTE_DESTINATIONS)}"
        )
    return AirbyteConnection(
        connection_id=str(spec["connection_id"]),
        conn_id=spec.get("conn_id") or "airbyte_default",
        destination=destination,
        poll_seconds=_positive(spec.get("poll_seconds", 30), "airbyte poll_seconds", path),
    )


def _positive(value: Any, what: str, path: Path) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0
    if number <= 0:
        raise SourceConfigError(f"{path}: {what} must be a positive number of seconds, not {value!r}")
    return number


def source_names(directory: Path | None = None) -> list[str]:
    """Names of all declared sources, in a stable order."""
    return sorted(path.stem for path in (directory or config.sources_dir()).glob("*.yml"))
