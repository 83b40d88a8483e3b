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
- ``files``: files dropped under the lake's ``inbox/<source>/<stream>/``; each stream
  declares its ``format`` and how to read it (:class:`FileFormat`).

Every declaration is checked against one schema (pydantic models, built on first use): a
key the schema does not know is an error naming the key it most likely means, and a value
of the wrong shape names its stream and key. Secrets never live here.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
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

    :param record_key: the columns whose values together identify a record (one, or several:
        an export keyed by project and engagement, a table's composite primary key); a
        declaration names one column or a list
    :param cursor_field: the column incremental syncs resume from
    :param subject_key: the column that identifies the person a record is about (the
        erasure index is kept on it)
    :param identifiers: every column that identifies that person, by identifier type
        (``{email: email, id: user_id}``): erasure resolves one identifier of a person to
        the others through them; the subject key is one of them
    :param pii: the columns that hold personal data, erased and verified with the rows
    :param checks: thresholds of the per-batch checks (:mod:`sluice.core.thresholds`)
    :param files: how a ``files`` source's stream is read
    """

    name: str
    record_key: tuple[str, ...]
    cursor_field: str | None = None
    subject_key: str | None = None
    identifiers: tuple[tuple[str, str], ...] = ()
    pii: tuple[str, ...] = ()
    checks: StreamChecks = DEFAULTS
    files: FileFormat | None = None

    def __post_init__(self) -> None:
        key = (self.record_key,) if isinstance(self.record_key, str) else tuple(self.record_key)
        if not key or not all(key):
            raise SourceConfigError(f"stream {self.name!r}: record_key names no column")
        object.__setattr__(self, "record_key", key)

    @property
    def key_name(self) -> str:
        """The record key as people read it: ``id``, or ``project_id, engagement_id``."""
        return ", ".join(self.record_key)

    @property
    def identifier_types(self) -> dict[str, str]:
        """Column -> identifier type."""
        return dict(self.identifiers)


@dataclass(frozen=True)
class FileFormat:
    """How a ``files`` stream's files are read.

    :param format: ``jsonl``, ``json`` (one array of records), ``csv`` or ``xml``
    :param pattern: glob of the file names taken under ``inbox/<source>/<stream>/``
    :param delimiter: csv field delimiter
    :param encoding: csv text encoding (``utf-8`` also accepts a byte-order mark)
    :param record_path: xml element of one record, ``invoice`` or ``inv:invoice``
    :param namespaces: xml prefix -> namespace URI, for ``record_path``
    :param xsd: xml schema every file must pass, relative to the declaration's folder
    :param max_expansion: a compressed file may decompress to at most this many times its size
    """

    format: str
    pattern: str = "*"
    delimiter: str = ","
    encoding: str = "utf-8"
    record_path: str | None = None
    namespaces: tuple[tuple[str, str], ...] = ()
    xsd: Path | None = None
    max_expansion: float = 100


FILE_FORMATS = ("jsonl", "json", "csv", "xml")
_FILE_KEYS = ("format", "pattern", "delimiter", "encoding", "record_path", "namespaces", "xsd")
DRIVERS = ("local", "airbyte", "files")
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
    declared = _validate(raw, path)
    driver = declared.driver
    required = {"local": ["streams", "connector"], "airbyte": ["streams", "airbyte"]}.get(driver, ["streams"])
    missing = [key for key in required if not getattr(declared, key)]
    if missing:
        raise SourceConfigError(f"{path}: missing required keys {missing} (driver {driver})")
    return SourceConfig(
        name=declared.name or name,
        connector=declared.connector or "",
        description=declared.description.strip(),
        owner=declared.owner,
        streams=tuple(_stream(stream_name, spec, path, driver) for stream_name, spec in declared.streams.items()),
        connector_config=declared.config or {},
        connection_id=declared.connection_id,
        driver=driver,
        airbyte=_airbyte_connection(declared.airbyte) if driver == "airbyte" else None,
        meta=declared.meta or {},
    )


def _stream(name: str, spec: Any, path: Path, driver: str = "local") -> StreamConfig:
    """One stream's declaration (its shape already validated), its personal-data keys checked."""
    where = f"{path}: stream {name!r}"
    files = _file_format(spec, path, where) if driver == "files" else None
    if driver != "files" and (keys := [key for key in _FILE_KEYS if getattr(spec, key) is not None]):
        raise SourceConfigError(f"{where}: {keys} are read by the files driver only (this source's is {driver!r})")
    identifiers = spec.identifiers or {}
    if (identifiers or spec.pii) and not spec.subject_key:
        raise SourceConfigError(f"{where} declares personal data but no subject_key (the column naming the person)")
    if spec.subject_key:
        identifiers = {spec.subject_key: spec.subject_key, **identifiers}
    try:
        checks = parse_checks(spec.checks, where)
    except CheckConfigError as error:
        raise SourceConfigError(str(error)) from error
    return StreamConfig(
        name=name,
        record_key=spec.record_key,
        cursor_field=spec.cursor_field,
        subject_key=spec.subject_key,
        identifiers=tuple(sorted(identifiers.items())),
        pii=tuple(spec.pii or ()),
        checks=checks,
        files=files,
    )


def _file_format(spec: Any, path: Path, where: str) -> FileFormat:
    if not spec.format:
        raise SourceConfigError(f"{where} has no format (one of {list(FILE_FORMATS)})")
    if spec.format == "xml" and not spec.record_path:
        raise SourceConfigError(f"{where} has no record_path (the element of one record)")
    return FileFormat(
        format=spec.format,
        pattern=spec.pattern or "*",
        delimiter=spec.delimiter or ",",
        encoding=spec.encoding or "utf-8",
        record_path=spec.record_path,
        namespaces=tuple(sorted((spec.namespaces or {}).items())),
        xsd=(path.parent / spec.xsd) if spec.xsd else None,
        max_expansion=spec.max_expansion,
    )


def _airbyte_connection(spec: Any) -> AirbyteConnection:
    return AirbyteConnection(
        connection_id=spec.connection_id,
        conn_id=spec.conn_id or "airbyte_default",
        destination=spec.destination,
        poll_seconds=spec.poll_seconds,
    )


# -- the schema of a declaration (pydantic), and its errors in the words of this file


@functools.cache
def _schema() -> dict[str, Any]:
    """The declaration's models, by part (``source``, ``stream``, ``airbyte``). Built on
    first use: parsing the DAG folder imports pydantic only when it reads a declaration."""
    from typing import Annotated, Literal

    from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

    name = Annotated[str, Field(min_length=1)]

    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

    class Stream(Strict):
        record_key: name | Annotated[list[name], Field(min_length=1)]
        cursor_field: str | None = None
        subject_key: str | None = None
        identifiers: dict[str, name] | None = None
        pii: list[str] | None = None
        checks: Any = None  # read by sluice.core.thresholds, which names what is wrong
        # the files driver's
        format: Literal[FILE_FORMATS] | None = None  # type: ignore[valid-type]
        pattern: str | None = None
        delimiter: Annotated[str, Field(min_length=1, max_length=1)] | None = None
        encoding: str | None = None
        record_path: str | None = None
        namespaces: dict[str, str] | None = None
        xsd: str | None = None
        max_expansion: Annotated[float, Field(gt=1)] = 100

    class Airbyte(Strict):
        connection_id: Annotated[name, BeforeValidator(lambda v: str(v) if type(v) is int else v)]
        conn_id: str | None = None
        destination: Literal[AIRBYTE_DESTINATIONS] = "lake"  # type: ignore[valid-type]
        poll_seconds: Annotated[float, Field(gt=0)] = 30

    class Source(Strict):
        name: str | None = None
        driver: Literal[DRIVERS] = "local"  # type: ignore[valid-type]
        connector: str | None = None
        description: str = ""
        owner: str | None = "data-platform"
        config: dict[str, Any] | None = None
        connection_id: str | None = None
        airbyte: Airbyte | None = None
        streams: dict[str, Stream] | None = None
        meta: dict[str, Any] | None = None

        @field_validator("streams", mode="before")
        @classmethod
        def _bare_streams(cls, value: Any) -> Any:
            # `users:` with nothing after it is a stream without keys (so without record_key)
            if not isinstance(value, dict):
                return value
            return {key: {} if spec is None else spec for key, spec in value.items()}

    return {"source": Source, "airbyte": Airbyte, "stream": Stream}


#: Per (part, key): what a missing or empty value is told, after the part's name.
_MISSING = {
    ("stream", "record_key"): " has no record_key",
    ("airbyte", "connection_id"): " needs connection_id, the Airbyte connection's id",
}
#: Per (part, key): what a value of the wrong shape is told, after the part's name.
_SHAPES = {
    ("source", "driver"): ": driver {input!r} is not one of " + str(list(DRIVERS)),
    ("source", "streams"): ": streams must map stream names to their keys, e.g. {{users: {{record_key: id}}}}",
    ("source", "airbyte"): ": airbyte needs connection_id, the Airbyte connection's id",
    ("source", "meta"): ": meta must be a mapping, e.g. {{owner: '<@U024BE7LH>', channel: '#data'}}",
    ("stream", None): " must map its keys to their values, e.g. {{record_key: id}}",
    ("stream", "identifiers"): ": identifiers maps columns to identifier types, e.g. {{id: user_id}}",
    ("stream", "pii"): ": pii lists the columns that hold personal data",
    ("airbyte", "destination"): " destination {input!r} is not one of " + str(list(AIRBYTE_DESTINATIONS)),
    ("airbyte", "poll_seconds"): " poll_seconds must be a positive number of seconds, not {input!r}",
}


def _validate(raw: dict[str, Any], path: Path) -> Any:
    """The declaration as its model, or a :class:`SourceConfigError` naming every problem.

    Unknown keys are reported alone, each with the key it most likely means: a misspelt
    ``record_kye`` is the error, not the ``record_key`` it leaves missing.
    """
    from pydantic import ValidationError

    models = _schema()
    try:
        return models["source"].model_validate(raw)
    except ValidationError as error:
        problems = error.errors(include_url=False)
    unknown: dict[tuple[str, str | None], list[str]] = {}
    for problem in problems:
        if problem["type"] == "extra_forbidden":
            part, key = _part(problem["loc"])
            unknown.setdefault(part, []).append(str(key))
    if unknown:
        kinds = list(models)  # the source's own keys first, then airbyte's, then the streams'
        ordered = sorted(unknown.items(), key=lambda item: kinds.index(item[0][0]))
        messages = [_unknown_keys(path, part, keys, list(models[part[0]].model_fields)) for part, keys in ordered]
    else:
        messages = list(dict.fromkeys(_shape_error(path, problem) for problem in problems))
    raise SourceConfigError("; ".join(messages))


def _part(loc: tuple[Any, ...]) -> tuple[tuple[str, str | None], str | None]:
    """Where an error is: the part of the declaration (kind, stream name) and its key."""
    if loc[0] == "streams" and len(loc) > 1:
        return ("stream", str(loc[1])), (str(loc[2]) if len(loc) > 2 else None)
    if loc[0] == "airbyte" and len(loc) > 1:
        return ("airbyte", None), str(loc[1])
    return ("source", None), str(loc[0])


def _prefix(path: Path, part: tuple[str, str | None]) -> str:
    kind, stream = part
    return {"source": f"{path}", "stream": f"{path}: stream {stream!r}", "airbyte": f"{path}: airbyte"}[kind]


def _unknown_keys(path: Path, part: tuple[str, str | None], keys: list[str], known: list[str]) -> str:
    """``... has unknown keys ['record_kye'] (did you mean 'record_key'?)``."""
    meant = {key: match[0] for key in keys if (match := difflib.get_close_matches(key, known, n=1))}
    if len(keys) == 1 and meant:
        hint = f"did you mean {meant[keys[0]]!r}?"
    elif meant:
        hint = "did you mean " + ", ".join(f"{good!r} for {key!r}" for key, good in meant.items()) + "?"
    else:
        hint = f"known keys: {', '.join(known)}"
    return f"{_prefix(path, part)} has unknown keys {keys} ({hint})"


def _shape_error(path: Path, problem: Mapping[str, Any]) -> str:
    part, key = _part(problem["loc"])
    missing = problem["type"] in ("missing", "string_too_short")
    template = _MISSING.get((part[0], key)) if missing else None
    template = template or _SHAPES.get((part[0], key))
    if template is not None:
        return _prefix(path, part) + template.format(input=problem.get("input"))
    if missing:
        return f"{_prefix(path, part)} has no {key}"
    reason = problem["msg"][0].lower() + problem["msg"][1:]
    return f"{_prefix(path, part)}: {key} {reason}, not {problem.get('input')!r}"


def source_names(directory: Path | None = None) -> list[str]:
    """Names of all declared sources, in a stable order."""
    return sorted(path.stem for path in (directory or config.sources_dir()).glob("*.yml"))
