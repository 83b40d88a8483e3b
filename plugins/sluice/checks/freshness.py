"""Freshness of the bronze tables against the SLA their dbt source declares.

The SLA is declared once, in the dbt sources YAML (``loaded_at_field``,
``freshness.warn_after``, ``freshness.error_after``), and read here from the dbt
manifest, already resolved by ``dbt parse`` (nothing here runs dbt). Each source table is
measured twice:

- in the warehouse: the age of ``max(<loaded_at_field>)`` (filtered by the SLA's
  ``filter``, if any), through :func:`sluice.warehouse.tables.warehouse_connection`;
- in the lake, for a Sluice stream's bronze table: the age of the Delta table's latest
  commit that added data (erasure rewrites and table maintenance do not count).

Past ``warn_after`` is a warning, past ``error_after`` an error. A table in error is
*stale*: :func:`plan` names every dbt model built from it, so the transform can leave
them out of its build (``--exclude source:<source>.<table>+``) and mark them skipped,
saying which table is late by how much, while models of fresh sources are built.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sluice.checks.report import worst
from sluice.checks.results import ERROR, PASS, WARN, CheckResult, CheckRun
from sluice.core.thresholds import CheckConfigError, describe_duration, parse_duration
from sluice.core.times import as_utc
from sluice.lake.storage import Lake

log = logging.getLogger(__name__)

#: The transform DAG's freshness task, whose verdict the dbt tasks read.
FRESHNESS_TASK_ID = "freshness"
#: Delta operations that add data; others (DELETE, VACUUM, OPTIMIZE, SET TBLPROPERTIES...) make no table fresh.
DATA_OPERATIONS = {"WRITE", "CREATE TABLE", "CREATE OR REPLACE TABLE", "STREAMING UPDATE"}
#: Lake commits looked at for the latest data commit.
HISTORY_DEPTH = 10
#: Columns that say when a model's rows were loaded (recorded for models that carry one).
MODEL_LOADED_AT_COLUMNS = ("_airbyte_extracted_at",)


@dataclass(frozen=True)
class SourceSla:
    """A dbt source table with a freshness SLA.

    :param unique_id: dbt's id (``source.sluice.faker.faker__users``)
    :param source_name: the dbt source (``faker``)
    :param name: the table's name in dbt (``faker__users``)
    :param schema: the warehouse schema (``bronze``)
    :param identifier: the warehouse table (``faker__users``)
    :param loaded_at_field: the column saying when a row was loaded
    :param warn_after: older than this warns (None: never)
    :param error_after: older than this is an error (None: never)
    :param filter: a SQL condition limiting the rows looked at (dbt's ``freshness.filter``)
    :param lake_table: the bronze Delta table (``bronze/faker/users``, relative to the lake's
        root) when the table is a Sluice stream's
    :param sluice_source: the Sluice source of that stream
    """

    unique_id: str
    source_name: str
    name: str
    schema: str
    identifier: str
    loaded_at_field: str
    warn_after: timedelta | None
    error_after: timedelta | None
    filter: str | None = None
    lake_table: str | None = None
    sluice_source: str | None = None

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.identifier}"

    @property
    def lake_name(self) -> str | None:
        """The lake table as results name it: ``lake:bronze/faker/users``."""
        return f"lake:{self.lake_table}" if self.lake_table else None

    @property
    def selector(self) -> str:
        """dbt's selector of the table and everything built from it."""
        return f"source:{self.source_name}.{self.name}+"

    def bounds(self) -> str:
        parts = [f"{word} after {describe_duration(after)}" for word, after in self._afters() if after]
        return ", ".join(parts)

    def judge(self, lag: timedelta) -> tuple[str, float | None]:
        """(status, the SLA bound it was held to)."""
        if self.error_after is not None and lag > self.error_after:
            return ERROR, self.error_after.total_seconds()
        if self.warn_after is not None and lag > self.warn_after:
            return WARN, self.warn_after.total_seconds()
        bound = self.warn_after or self.error_after
        return PASS, bound.total_seconds() if bound else None

    def _afters(self) -> list[tuple[str, timedelta | None]]:
        return [("warn", self.warn_after), ("error", self.error_after)]


def _sla_bound(value: Any, where: str) -> timedelta | None:
    """One of ``warn_after``/``error_after`` as the manifest holds it (unset: count and period null)."""
    if value is None or (isinstance(value, Mapping) and value.get("count") is None and value.get("period") is None):
        return None
    return parse_duration({k: v for k, v in value.items() if k in ("count", "period")}, where)


def source_slas(manifest: Mapping[str, Any], sources: Iterable[Any] = ()) -> list[SourceSla]:
    """Every dbt source table of ``manifest`` with a freshness SLA.

    :param sources: the Sluice source declarations, to find the lake table of each
    :raises CheckConfigError: an SLA that does not parse, or one without a loaded_at_field
    """
    from sluice.warehouse.tables import warehouse_table

    streams = {
        warehouse_table(source.name, stream.name): (source.name, f"bronze/{source.name}/{stream.name}")
        for source in sources
        if not source.writes_warehouse
        for stream in source.streams
    }
    slas = []
    for unique_id, node in sorted(manifest.get("sources", {}).items()):
        config = node.get("config") or {}
        freshness = config.get("freshness") if config.get("freshness") is not None else node.get("freshness")
        where = f"dbt source {node['source_name']}.{node['name']}"
        if not freshness:
            continue
        if not isinstance(freshness, Mapping):
            raise CheckConfigError(f"{where}: freshness must be a mapping of warn_after/error_after, not {freshness!r}")
        warn = _sla_bound(freshness.get("warn_after"), f"{where}: freshness.warn_after")
        error = _sla_bound(freshness.get("error_after"), f"{where}: freshness.error_after")
        if warn is None and error is None:
            continue
        if warn is not None and error is not None and warn > error:
            raise CheckConfigError(f"{where}: freshness.warn_after is longer than error_after")
        loaded_at = node.get("loaded_at_field") or config.get("loaded_at_field")
        if not loaded_at:
            raise CheckConfigError(
                f"{where} declares a freshness SLA but no loaded_at_field (the column saying when a row was loaded)"
            )
        identifier = node.get("identifier") or node["name"]
        stream = streams.get(identifier.lower()) if node["schema"].lower() == "bronze" else None
        slas.append(
            SourceSla(
                unique_id=unique_id,
                source_name=node["source_name"],
                name=node["name"],
                schema=node["schema"],
                identifier=identifier,
                loaded_at_field=loaded_at,
                warn_after=warn,
                error_after=error,
                filter=freshness.get("filter") or None,
                lake_table=stream[1] if stream else None,
                sluice_source=stream[0] if stream else None,
            )
        )
    return slas


def existing_tables(connection: Any, schemas: Iterable[str]) -> set[str]:
    """``schema.table`` (lower case) of the tables and views in ``schemas``."""
    wanted = sorted({schema.lower() for schema in schemas})
    if not wanted:
        return set()
    cursor = connection.cursor()
    try:
        listed = ", ".join(f"'{schema}'" for schema in wanted)
        # views too (an Airbyte connection writing the warehouse has bronze views); fakesnow
        # lists them only in information_schema.views
        cursor.execute(
            " UNION ".join(
                f"SELECT lower(table_schema), lower(table_name) FROM information_schema.{listing}"
                f" WHERE lower(table_schema) IN ({listed})"
                for listing in ("tables", "views")
            )
        )
        return {f"{schema}.{table}" for schema, table in cursor.fetchall()}
    finally:
        cursor.close()


def warehouse_loaded_at(connection: Any, slas: Sequence[SourceSla]) -> dict[str, datetime | str]:
    """Per SLA's unique_id: ``max(loaded_at_field)`` in the warehouse, or why there is none."""
    present = existing_tables(connection, (sla.schema for sla in slas))
    measured: dict[str, datetime | str] = {}
    cursor = connection.cursor()
    try:
        for sla in slas:
            if sla.relation.lower() not in present:
                measured[sla.unique_id] = f"{sla.relation} does not exist in the warehouse: no batch was loaded"
                continue
            where = f" WHERE {sla.filter}" if sla.filter else ""
            cursor.execute(f"SELECT max({sla.loaded_at_field}) FROM {sla.relation}{where}")
            newest = as_utc(cursor.fetchone()[0])
            measured[sla.unique_id] = newest if newest else f"{sla.relation} holds no rows"
    finally:
        cursor.close()
    return measured


def last_data_commit(lake: Lake, path: str) -> datetime | str:
    """When the Delta table at ``path`` (relative to the lake's root) last got data, or why
    that is unknown. Older than the last :data:`HISTORY_DEPTH` commits: the oldest of them."""
    table = lake.delta_table(lake.path(path))
    if table is None:
        return f"no Delta table at {path}: no batch was committed"
    history = table.history(HISTORY_DEPTH)
    data = [entry for entry in history if entry.get("operation") in DATA_OPERATIONS] or history[-1:]
    return datetime.fromtimestamp(max(entry["timestamp"] for entry in data) / 1000, UTC)


def freshness_results(
    slas: Sequence[SourceSla],
    warehouse: Mapping[str, datetime | str],
    lake: Mapping[str, datetime | str],
    *,
    now: datetime,
    dag_id: str,
    batch: str,
) -> list[CheckResult]:
    """One result per measured table: the lag in seconds against the SLA. A table that
    could not be measured (missing, empty) is an error, its lag counted from the epoch."""
    run = CheckRun(checked_at=now, dag_id=dag_id, batch=batch)
    for sla in slas:
        for table_name, what, measured in (
            (sla.relation, "warehouse: newest row loaded", warehouse.get(sla.unique_id)),
            (sla.lake_name, "lake: last commit with data", lake.get(sla.unique_id)),
        ):
            if measured is None or table_name is None:
                continue
            if isinstance(measured, str):
                lag, status, bound = now - datetime.fromtimestamp(0, UTC), ERROR, None
                detail = f"{what}: none, {measured} ({sla.bounds()})"
                if sla.error_after is None:
                    status = WARN
            else:
                lag = now - measured
                status, bound = sla.judge(lag)
                detail = f"{what} {describe_duration(lag)} ago ({sla.bounds()})"
            run.record(
                "freshness",
                "lag_seconds",
                round(lag.total_seconds(), 3),
                detail,
                threshold=bound,
                status=status,
                blocking=sla.error_after is not None,
                table_name=table_name,
                source=sla.source_name,
            )
    return run.results


def check_freshness(
    manifest: Mapping[str, Any],
    sources: Iterable[Any],
    *,
    lake: Lake,
    connection: Any,
    now: datetime | None = None,
    dag_id: str = "",
    batch: str = "",
    only: Iterable[str] | None = None,
) -> tuple[list[SourceSla], list[CheckResult]]:
    """Measure every SLA of ``manifest`` (``only``: these dbt sources) in the warehouse and
    the lake; the SLAs and their results."""
    now = now or datetime.now(UTC)
    slas = source_slas(manifest, sources)
    if only is not None:
        wanted = set(only)
        if unknown := sorted(wanted - {sla.source_name for sla in slas}):
            raise CheckConfigError(f"dbt sources {unknown} declare no freshness SLA (or do not exist)")
        slas = [sla for sla in slas if sla.source_name in wanted]
    in_warehouse = warehouse_loaded_at(connection, slas) if connection is not None else {}
    in_lake = {sla.unique_id: last_data_commit(lake, sla.lake_table) for sla in slas if sla.lake_table}
    return slas, freshness_results(slas, in_warehouse, in_lake, now=now, dag_id=dag_id, batch=batch)


def incident_table(slas: Sequence[SourceSla]) -> Any:
    """For :func:`sluice.checks.report.report`: a source table's lake copy shares its incident."""
    warehouse_of = {sla.lake_name: sla.relation for sla in slas if sla.lake_name}
    return lambda result: warehouse_of.get(result.table_name, result.table_name)


def descendants(manifest: Mapping[str, Any], unique_id: str) -> list[str]:
    """The models, seeds and snapshots built from ``unique_id``, directly or not."""
    children = manifest.get("child_map") or {}
    nodes = manifest.get("nodes") or {}
    found: set[str] = set()
    queue = [unique_id]
    while queue:
        for child in children.get(queue.pop(), []):
            if child not in found and nodes.get(child, {}).get("resource_type") in ("model", "seed", "snapshot"):
                found.add(child)
                queue.append(child)
    return sorted(found)


def plan(manifest: Mapping[str, Any], slas: Sequence[SourceSla], results: Sequence[CheckResult]) -> dict[str, Any]:
    """What the transform does with stale inputs (its freshness task's XCom).

    :returns: ``stale`` (source unique_id -> why it is stale), ``exclude`` (dbt selectors to
        leave out of the build), ``skipped`` (model unique_id -> the message its task is
        skipped with) and ``tests_left_out`` (the tests that read a stale table or a skipped
        model, which the build leaves out with them: a built model's relationship test to
        a skipped one, for instance)
    """
    by_table: dict[str, list[CheckResult]] = {}
    for result in results:
        by_table.setdefault(result.table_name, []).append(result)
    stale: dict[str, str] = {}
    exclude: list[str] = []
    skipped: dict[str, list[str]] = {}
    for sla in slas:
        measured = by_table.get(sla.relation, []) + by_table.get(sla.lake_name or "", [])
        if worst(r.status for r in measured) != ERROR:
            continue
        why = f"{sla.relation} is stale: " + "; ".join(r.detail for r in measured if r.status == ERROR)
        stale[sla.unique_id] = why
        exclude.append(sla.selector)
        for model in descendants(manifest, sla.unique_id):
            skipped.setdefault(model, []).append(why)
    left_out = set(stale) | set(skipped)
    tests = [
        unique_id
        for unique_id, node in sorted((manifest.get("nodes") or {}).items())
        if node.get("resource_type") == "test" and left_out & set((node.get("depends_on") or {}).get("nodes") or [])
    ]
    return {
        "stale": stale,
        "exclude": exclude,
        "skipped": {model: "not built on stale input: " + " | ".join(whys) for model, whys in skipped.items()},
        "tests_left_out": tests,
    }


def model_freshness(
    manifest: Mapping[str, Any], connection: Any, *, now: datetime | None = None, dag_id: str = "", batch: str = ""
) -> list[CheckResult]:
    """The age of the newest row of every built model that carries a load time
    (:data:`MODEL_LOADED_AT_COLUMNS`), recorded without a threshold."""
    now = now or datetime.now(UTC)
    models = {
        f"{node['schema']}.{node.get('alias') or node['name']}".lower(): node["name"]
        for node in (manifest.get("nodes") or {}).values()
        if node.get("resource_type") == "model" and (node.get("config") or {}).get("materialized") != "view"
    }
    if not models:
        return []
    schemas = sorted({relation.split(".")[0] for relation in models})
    columns = ", ".join(f"'{column}'" for column in MODEL_LOADED_AT_COLUMNS)
    cursor = connection.cursor()
    try:
        cursor.execute(
            "SELECT lower(table_schema), lower(table_name), lower(column_name) FROM information_schema.columns"
            f" WHERE lower(table_schema) IN ({', '.join(repr(s) for s in schemas)})"
            f" AND lower(column_name) IN ({columns})"
        )
        carrying = sorted({(f"{schema}.{table}", column) for schema, table, column in cursor.fetchall()})
        run = CheckRun(checked_at=now, dag_id=dag_id, batch=batch)
        for relation, column in carrying:
            if relation not in models or any(r.table_name == relation for r in run.results):
                continue
            cursor.execute(f"SELECT max({column}) FROM {relation}")
            newest = as_utc(cursor.fetchone()[0])
            if newest is None:
                continue
            lag = now - newest
            detail = f"newest row loaded {describe_duration(lag)} ago (recorded, no SLA)"
            run.record("freshness", "lag_seconds", round(lag.total_seconds(), 3), detail, table_name=relation)
        return run.results
    finally:
        cursor.close()
