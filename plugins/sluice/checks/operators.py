"""Airflow operators of the checks; the work is in plain-Python modules beside them.

- :class:`BatchMetricsOperator`: a source's batch, after its loads and before its publish
  (:mod:`sluice.checks.metrics`)
- :class:`FreshnessCheckOperator`: the bronze tables against their dbt freshness SLA, before
  the transform's build (:mod:`sluice.checks.freshness`)
- :class:`ModelFreshnessOperator`: the built models' freshness, after the build
  (:mod:`sluice.checks.freshness`)

Each records its figures (lake ``ops/check_results``, warehouse ``ops.batch_metrics``,
Airflow's metrics) and alerts once per (table, check) through :mod:`sluice.checks.report`.
They write the warehouse: on DuckDB, give them the warehouse pool.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager, nullcontext
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException, BaseOperator

from sluice.core.batch import BATCH_ID_TEMPLATE


class BreachFailure(AirflowFailException):
    """A check found an error that stops what follows; its alert was sent by the check,
    so the task-failure alert is not sent again (``alerted``), and it is not retried:
    measuring again finds the same."""

    alerted = True


def _dag_id(context: Mapping[str, Any]) -> str:
    ti = context.get("ti") or context.get("task_instance")
    return getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "")


def _scheduled(context: Mapping[str, Any]) -> bool:
    """Whether the run is the scheduler's own (not a backfill, nor a manual rerun of a past interval)."""
    run_type = getattr(context.get("dag_run"), "run_type", None)
    return str(getattr(run_type, "value", run_type)) == "scheduled"


class _CheckOperator(BaseOperator):
    """Common parameters of the check operators.

    :param batch: the batch checked (templated; the run's interval start)
    """

    template_fields: Sequence[str] = ("batch",)
    ui_color = "#f0e6fa"

    def __init__(self, *, batch: str = BATCH_ID_TEMPLATE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch = batch

    @contextmanager
    def _stores(self) -> Iterator[tuple[Any, Any]]:
        """The lake and a warehouse connection, closed afterwards: where results are recorded."""
        from sluice.lake.storage import open_lake
        from sluice.warehouse.target import warehouse_connection

        lake = open_lake()
        connection = warehouse_connection()
        try:
            yield lake, connection
        finally:
            connection.close()

    def _report(self, results: list, context: Mapping[str, Any], lake: Any, connection: Any, **kwargs: Any) -> Any:
        from sluice.checks.report import report

        outcome = report(results, lake=lake, connection=connection, context=context, **kwargs)
        for result in outcome.results:
            self.log.info(
                "%-5s %s %s %s = %g: %s",
                result.status,
                result.table_name,
                result.check,
                result.metric,
                result.value,
                result.detail,
            )
        return outcome


class BatchMetricsOperator(_CheckOperator):
    """Measure a source's batch: completeness, uniqueness, validity, timeliness,
    consistency between lake and warehouse, volume; each against its stream's thresholds
    (``checks`` in ``include/sources/<source>.yml``).

    A breach alerts; an error of a blocking threshold fails the task, so the source's
    publish (and the transform waiting on it) does not happen for this batch.

    :param source: the source declaration (``include/sources/<source>.yml``)
    :param streams: the streams measured (default: all)
    """

    template_fields: Sequence[str] = ("source", "batch")

    def __init__(self, *, source: str, streams: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.streams = list(streams) if streams is not None else None

    def execute(self, context: Any) -> dict[str, Any]:
        from sluice.checks.metrics import measure_batch
        from sluice.core.sources import load_source

        source = load_source(self.source)
        with self._stores() as (lake, connection):
            results = measure_batch(
                lake,
                source,
                self.batch,
                connection=connection,
                interval_end=context.get("data_interval_end"),
                compare_timeliness=_scheduled(context),
                dag_id=_dag_id(context),
                streams=self.streams,
            )
            outcome = self._report(results, context, lake, connection)
        if outcome.blocking:
            raise BreachFailure(
                f"blocking threshold breached, so {source.asset_name} is not published for batch {self.batch}: "
                + outcome.blocking_summary()
            )
        return {"figures": len(outcome.results), "alerted": outcome.alerted, "errors": len(outcome.errors)}


class FreshnessCheckOperator(_CheckOperator):
    """Check every bronze table with a dbt freshness SLA, in the warehouse and the lake.

    Past ``warn_after``: an alert. Past ``error_after``: an alert, and the table is stale.
    Returns (XCom) the plan for stale inputs (:func:`sluice.checks.freshness.plan`): the
    transform's build leaves out what is built from stale tables and their tasks are
    skipped, saying which table is late by how much.

    :param sources: the dbt sources checked (default: every one with an SLA)
    :param fail_on_error: fail the task when a table is stale; the transform DAG sets it
        False, since it skips the stale tables' models and builds the rest
    :param conn_id: an Airflow connection whose common-sql hook reaches the tables measured
        (PostgreSQL, Snowflake, ...); default: the platform's warehouse. The results are
        recorded in the platform's warehouse and lake either way.
    """

    def __init__(
        self,
        *,
        sources: Sequence[str] | None = None,
        fail_on_error: bool = True,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sources = list(sources) if sources is not None else None
        self.fail_on_error = fail_on_error
        self.conn_id = conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from sluice.checks.freshness import check_freshness, incident_table, plan
        from sluice.core.dbt_manifest import load_manifest
        from sluice.core.sources import load_source, source_names
        from sluice.warehouse.tables import sql_connection

        manifest = load_manifest()
        sources = [load_source(name) for name in source_names()]
        with self._stores() as (lake, connection):
            measuring = closing(sql_connection(self.conn_id)) if self.conn_id else nullcontext(connection)
            with measuring as measured:
                slas, results = check_freshness(
                    manifest,
                    sources,
                    lake=lake,
                    connection=measured,
                    dag_id=_dag_id(context),
                    batch=self.batch,
                    only=self.sources,
                )
            self._report(results, context, lake, connection, incident_table=incident_table(slas))
        verdict = plan(manifest, slas, results)
        for why in verdict["stale"].values():
            self.log.warning("%s", why)
        if verdict["skipped"]:
            self.log.warning(
                "Left out of the build (%s): %s",
                " ".join(verdict["exclude"]),
                ", ".join(sorted(uid.rsplit(".", 1)[-1] for uid in verdict["skipped"])),
            )
        if self.fail_on_error and verdict["stale"]:
            raise BreachFailure("; ".join(verdict["stale"].values()))
        return verdict


class ModelFreshnessOperator(_CheckOperator):
    """After the build: the age of the newest row of every built model that carries a load
    time, recorded without a threshold (totals across layers are dbt tests of the models:
    ``totals_agree``)."""

    def execute(self, context: Any) -> dict[str, Any]:
        from sluice.checks.freshness import model_freshness
        from sluice.core.dbt_manifest import load_manifest

        with self._stores() as (lake, connection):
            results = model_freshness(load_manifest(), connection, dag_id=_dag_id(context), batch=self.batch)
            outcome = self._report(results, context, lake, connection)
        return {"figures": len(outcome.results)}


def skip_if_built_from_stale(context: Any, freshness_task_id: str) -> None:
    """A dbt task's ``pre_execute``: skip it, saying why, when the freshness task's plan names
    its model (built from a stale table); any other task runs."""
    node = (getattr(context["task"], "extra_context", None) or {}).get("dbt_node_config") or {}
    if node.get("resource_type") not in ("model", "seed", "snapshot"):
        return
    verdict = context["ti"].xcom_pull(task_ids=freshness_task_id)
    reason = ((verdict or {}).get("skipped") or {}).get(node.get("unique_id"))
    if reason:
        raise AirflowSkipException(reason)
