"""What an Airbyte connection must look like for Sluice to take its syncs' output.

For a source whose destination is the lake, the connection's S3 destination writes
Parquet into each stream's bronze table folder, in a folder of its own, where the bronze
commit registers the files without copying them. Settings (Airbyte's S3 destination)::

    S3 bucket name      the lake's bucket (SLUICE_LAKE_ROOT=s3://<bucket>/<prefix>)
    S3 bucket path      <prefix>/bronze
    S3 path format      ${NAMESPACE}/${STREAM_NAME}/airbyte/${YEAR}_${MONTH}_${DAY}_${EPOCH}_
    output format       Parquet
    namespace           custom format: the source's name
    sync mode           append (incremental or full refresh): "overwrite" would delete
                        files that bronze tables reference

:func:`lake_folders` checks all of that before a sync starts and answers, per stream,
the folder the destination writes.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any

from sluice.core.sources import SourceConfig
from sluice.lake.files import bronze_table_path
from sluice.lake.storage import Lake

DEFAULT_PATH_FORMAT = "${NAMESPACE}/${STREAM_NAME}/${YEAR}_${MONTH}_${DAY}_${EPOCH}_"
RECOMMENDED_PATH_FORMAT = "${NAMESPACE}/${STREAM_NAME}/airbyte/${YEAR}_${MONTH}_${DAY}_${EPOCH}_"
#: path variables that make every sync's file names new (no file a table references is overwritten)
UNIQUE_VARIABLES = ("${EPOCH}", "${UUID}")
_VARIABLE = re.compile(r"\$\{[A-Z_]+\}")
#: Airbyte's destination types that write Snowflake
SNOWFLAKE_TYPES = ("snowflake",)


class DestinationError(ValueError):
    """The Airbyte connection does not write where, or how, the source declares."""


def _where(source: SourceConfig, connection: dict[str, Any]) -> str:
    return f"source {source.name}: Airbyte connection {connection.get('connectionId')} ({connection.get('name')!r})"


def check_streams(source: SourceConfig, connection: dict[str, Any]) -> None:
    """The connection syncs exactly the declared streams, in a mode that keeps old files."""
    configured = {s["name"]: s for s in (connection.get("configurations") or {}).get("streams") or []}
    declared = {stream.name for stream in source.streams}
    where = _where(source, connection)
    if missing := sorted(declared - configured.keys()):
        raise DestinationError(f"{where} does not sync the declared stream(s) {missing}; it syncs {sorted(configured)}")
    if extra := sorted(configured.keys() - declared):
        raise DestinationError(
            f"{where} also syncs {extra}, which the source does not declare: declare them in"
            f" include/sources/{source.name}.yml or deselect them in Airbyte"
        )
    for name, stream in sorted(configured.items()):
        mode = stream.get("syncMode") or ""
        if "overwrite" in mode or "deduped" in mode:
            raise DestinationError(
                f"{where}: stream {name} syncs in mode {mode!r}, which deletes or rewrites the files of earlier"
                " syncs; use an append mode (incremental_append or full_refresh_append): bronze keeps every batch"
            )


def lake_folders(
    source: SourceConfig, connection: dict[str, Any], destination: dict[str, Any], lake: Lake
) -> dict[str, str]:
    """Per declared stream, the folder (a path on the lake's filesystem) the connection's
    S3 destination writes; raises :class:`DestinationError` naming what to change."""
    where = _where(source, connection)
    kind = destination.get("destinationType")
    if kind != "s3":
        raise DestinationError(
            f"{where} writes to a {kind!r} destination ({destination.get('name')!r}), but the source declares"
            " destination lake: point the connection at an S3 destination in the lake's bucket, or declare"
            " airbyte.destination: warehouse"
        )
    if lake.scheme != "s3":
        raise DestinationError(f"{where}: a lake destination needs the lake on S3 (SLUICE_LAKE_ROOT=s3://…)")
    config = destination.get("configuration") or {}
    output = (config.get("format") or {}).get("format_type", "")
    if str(output).lower() != "parquet":
        raise DestinationError(
            f"{where}: the S3 destination writes {output or 'no format'}; set its output format to Parquet"
        )
    path_format = config.get("s3_path_format") or DEFAULT_PATH_FORMAT
    if not any(variable in path_format for variable in UNIQUE_VARIABLES):
        raise DestinationError(
            f"{where}: S3 path format {path_format!r} has none of {list(UNIQUE_VARIABLES)}, so a sync could"
            f" overwrite files of an earlier one; use {RECOMMENDED_PATH_FORMAT!r}"
        )
    namespace = connection.get("namespaceFormat") or ""
    if "${NAMESPACE}" in path_format and connection.get("namespaceDefinition", "custom_format") != "custom_format":
        raise DestinationError(f"{where}: set the connection's namespace to a custom format: {source.name!r}")
    check_streams(source, connection)
    prefix = connection.get("prefix") or ""
    folders = {}
    for stream in source.streams:
        resolved = path_format.replace("${NAMESPACE}", namespace).replace("${STREAM_NAME}", prefix + stream.name)
        fixed = _VARIABLE.split(resolved, maxsplit=1)[0].rsplit("/", 1)[0] if "/" in resolved else ""
        folder = posixpath.normpath(
            posixpath.join(config.get("s3_bucket_name", ""), (config.get("s3_bucket_path") or "").strip("/"), fixed)
        )
        table = bronze_table_path(lake, source.name, stream.name)
        inside = posixpath.relpath(folder, table)
        if inside == "." or inside.startswith(("..", "_", ".")):
            bucket, _, prefix = lake.root.partition("/")
            raise DestinationError(
                f"{where}: stream {stream.name} is written to s3://{folder}/, not to a folder of its own inside the"
                f" bronze table s3://{table}/ (e.g. s3://{table}/airbyte/): set the S3 bucket name to {bucket!r},"
                f" the bucket path to {posixpath.join(prefix, 'bronze')!r}, the namespace to {source.name!r} and"
                f" the path format to {RECOMMENDED_PATH_FORMAT!r}"
            )
        folders[stream.name] = folder
    return folders


@dataclass(frozen=True)
class WarehouseDestination:
    """Where a connection's Snowflake destination writes.

    :param schema: the schema of the streams' tables (one per stream, named after it)
    :param raw_schema: the schema of Airbyte's raw tables (``<schema>_raw__stream_<stream>``,
        each record whole in ``_airbyte_data``), which it keeps beside the typed ones
    """

    schema: str
    raw_schema: str = "airbyte_internal"


def check_warehouse_destination(
    source: SourceConfig, connection: dict[str, Any], destination: dict[str, Any]
) -> WarehouseDestination:
    """Where the connection's Snowflake destination writes the streams' tables."""
    where = _where(source, connection)
    kind = destination.get("destinationType")
    if kind not in SNOWFLAKE_TYPES:
        raise DestinationError(
            f"{where} writes to a {kind!r} destination ({destination.get('name')!r}), but the source declares"
            " destination warehouse: point the connection at a Snowflake destination, or declare"
            " airbyte.destination: lake"
        )
    from sluice.warehouse.target import current

    if kind not in current().airbyte_destinations:
        raise DestinationError(f"{where}: a warehouse destination needs the warehouse on Snowflake (SLUICE_WAREHOUSE)")
    check_streams(source, connection)
    config = destination.get("configuration") or {}
    raw_schema = str(config.get("raw_data_schema") or "airbyte_internal")
    if connection.get("namespaceDefinition") == "custom_format" and connection.get("namespaceFormat"):
        return WarehouseDestination(str(connection["namespaceFormat"]), raw_schema)
    return WarehouseDestination(str(config.get("schema") or "PUBLIC"), raw_schema)
