"""Builders that keep DAG files declarative and give every DAG the platform defaults.

The conventions (owner, tags, docs, retries with exponential backoff, no catchup,
bounded concurrency) are *set* here and *enforced* by the cluster policy in
:mod:`sluice.policy`, so a DAG written without these builders is still held to them.
Every task also gets the callbacks that alert on Slack (:mod:`sluice.alerting.callbacks`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Asset, TaskGroup
from airflow.timetables.interval import CronDataIntervalTimetable

from sluice.alerting.callbacks import on_batch_late, on_dag_success, on_sla_miss, on_task_failure, on_task_success
from sluice.alerting.settings import deadlines_watched, late_after
from sluice.core import config
from sluice.core.compat import AIRFLOW_2
from sluice.core.dag_ids import ERASURE_DAG_ID, TRANSFORM_DAG_ID, ingestion_dag_id
from sluice.core.sources import SourceConfig, load_source

#: The ingestion task whose success publishes a source's batch (its Asset) to the transform.
PUBLISH_TASK_ID = "metrics"
#: The platform's batch: every 6 hours, on UTC boundaries.
BATCH_CRON = "0 */6 * * *"
#: The first interval any platform DAG knows about (backfills start here at the earliest).
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT_OWNER = "data-platform"
MIN_RETRIES = 2
MAX_ACTIVE_RUNS = 1

DEFAULT_ARGS: dict[str, Any] = {
    "retries": MIN_RETRIES,
    # first retry after a minute (SLUICE_RETRY_DELAY_SECONDS), then exponentially later
    "retry_delay": timedelta(seconds=config.retry_delay_seconds()),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    # one Slack alert per incident once the retries are spent, one "resolved" when it passes
    "on_failure_callback": on_task_failure,
    "on_success_callback": on_task_success,
}


def batch_timetable(cron: str = BATCH_CRON) -> CronDataIntervalTimetable:
    """Each run covers [previous tick, tick): real data intervals, also on Airflow 3."""
    return CronDataIntervalTimetable(cron, timezone="UTC")


def platform_dag(
    dag_id: str,
    *,
    doc_md: str,
    tags: Iterable[str],
    owner: str = DEFAULT_OWNER,
    schedule: Any = None,
    default_args: dict[str, Any] | None = None,
    **kwargs: Any,
) -> DAG:
    """A DAG with the platform defaults; ``schedule`` defaults to the 6-hourly batch.

    A run still going ``SLUICE_BATCH_LATE_HOURS`` (5) after its interval ended alerts once,
    and says "resolved" when a run succeeds.
    """
    tags = sorted({"sluice", *tags})
    return DAG(
        dag_id=dag_id,
        schedule=schedule or batch_timetable(),
        start_date=kwargs.pop("start_date", START_DATE),
        catchup=kwargs.pop("catchup", False),
        max_active_runs=kwargs.pop("max_active_runs", MAX_ACTIVE_RUNS),
        doc_md=doc_md,
        tags=tags,
        default_args={**DEFAULT_ARGS, "owner": owner, **_late_batch_args(), **(default_args or {})},
        on_success_callback=kwargs.pop("on_success_callback", on_dag_success),
        **_late_batch_alert(tags),
        **kwargs,
    )


def _late_batch_alert(tags: list[str]) -> dict[str, Any]:
    """Airflow 3: a deadline alert ``late_after()`` after the run was queued, which for a
    scheduled run is when its interval ended (a backfill's runs: when the backfill queued
    them). Airflow 2.11 has SLAs instead (:func:`_late_batch_args`)."""
    if AIRFLOW_2:
        return {"sla_miss_callback": on_sla_miss}
    if not deadlines_watched():
        return {}
    from airflow.sdk import DeadlineAlert, DeadlineReference, SyncCallback

    alert = DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=late_after(),
        callback=SyncCallback(on_batch_late, kwargs={"tags": tags}),
    )
    return {"deadline": alert}


def run_in_process(dag: DAG, logical_date: datetime, run_after: datetime) -> Any:
    """Run ``dag`` in this process (``dag.test``): its DAG run, once finished.

    Such a run has no scheduler to watch its deadline, so the DAG runs without it (and
    Airflow 3.3's ``dag.test`` fails to finish a run of a DAG that has one: it looks the
    deadline up by the DAG's in-memory form instead of its stored id).
    """
    if AIRFLOW_2:
        return dag.test(execution_date=logical_date)
    dag.deadline = None
    return dag.test(logical_date=logical_date, run_after=run_after)


def _late_batch_args() -> dict[str, Any]:
    """Airflow 2.11: every task's SLA, counted from the end of the run's interval (checked
    for scheduled runs only)."""
    return {"sla": late_after()} if AIRFLOW_2 else {}


def platform_dag_ids() -> list[str]:
    """Every platform DAG, in the order their intervals depend on each other."""
    from sluice.core.sources import source_names

    return [ingestion_dag_id(name) for name in source_names()] + [TRANSFORM_DAG_ID]


def source_asset(source: SourceConfig) -> Asset:
    """Updated when a batch of ``source`` is in the bronze lake and warehouse tables."""
    return Asset(source.asset_name)


def ingestion_dag(source_name: str) -> DAG:
    """The DAG of one source: land the batch, then per stream commit and load it, then
    measure it and publish it (a blocking breach holds the publish, so the transform waits)."""
    from sluice.checks.operators import BatchMetricsOperator
    from sluice.ingest.drivers import driver_for, land_task
    from sluice.ingest.operators import BronzeCommitOperator
    from sluice.warehouse.operators import WarehouseLoadOperator

    source = load_source(source_name)
    driver = driver_for(source)
    streams = ", ".join(f"`{s.name}`" for s in source.streams)
    into_lake = not source.writes_warehouse
    doc_md = f"## Ingest `{source.name}`\n\n{source.description}\n\nEvery 6 hours: {driver.describe(source)}"
    if into_lake:
        doc_md += (
            f"; commit each stream ({streams}) by registering those files in the Delta table "
            f"`bronze/{source.name}/<stream>`, and load it into `bronze.{source.name}__<stream>` in "
            f"the warehouse. Rerunning a batch replaces it.\n\n"
            f"Bad records are kept under `quarantine/{source.name}/` with their reason.\n\n"
            "Then `metrics` measures the batch (completeness, uniqueness, validity, timeliness, "
            "consistency of lake and warehouse, volume) against the thresholds of "
            f"`include/sources/{source.name}.yml`, and publishes the batch (the source's Asset) "
            "unless a blocking threshold is breached."
        )
    else:
        doc_md += (
            ".\n\nThen `metrics` measures the batch in the warehouse (completeness, uniqueness, "
            "records the destination changed, timeliness, volume) against the thresholds of "
            f"`include/sources/{source.name}.yml`, and publishes the batch (the source's Asset) "
            "unless a blocking threshold is breached."
        )
    with platform_dag(
        ingestion_dag_id(source.name),
        doc_md=doc_md,
        tags=["ingest", f"source:{source.name}"],
        owner=source.owner,
        description=f"Land {source.name} into the bronze lake and warehouse every 6 hours",
    ) as dag:
        land = land_task(source)
        # the batch's last step publishes it: a blocking breach fails it, so no Asset event
        metrics = BatchMetricsOperator(
            task_id=PUBLISH_TASK_ID, source=source.name, pool=config.WAREHOUSE_POOL, outlets=[source_asset(source)]
        )
        if not into_lake:
            land >> metrics
        for stream in source.streams if into_lake else ():
            with TaskGroup(group_id=stream.name):
                commit = BronzeCommitOperator(task_id="commit", source=source.name, stream=stream.name)
                load = WarehouseLoadOperator(
                    task_id="load", source=source.name, stream=stream.name, pool=config.WAREHOUSE_POOL
                )
            land >> commit >> load >> metrics
    return dag


def transform_dag() -> DAG:
    """dbt's bronze, silver, gold and mart layers for each batch, after every source landed it."""
    from sluice.checks.freshness import FRESHNESS_TASK_ID
    from sluice.checks.operators import FreshnessCheckOperator, ModelFreshnessOperator
    from sluice.core.sources import source_names
    from sluice.transform.cosmos import dbt_task_group, the_build
    from sluice.transform.sensors import SourcePublishedSensor

    sources = [load_source(name) for name in source_names()]
    doc_md = (
        "## Transform\n\nFor each 6-hour batch, once every source's ingestion has published it "
        "(its Asset), build the dbt project in one `dbt build`, layer by layer: bronze staging views, "
        "silver (typed, deduplicated), gold (dimensions and facts), marts; then each model's task "
        "and its tests' task report the build's outcome, all at once. Incremental models process "
        "only this run's batch window.\n\n"
        "First, `freshness` checks every bronze table against its dbt source's freshness SLA, in "
        "the warehouse and the lake: what is built from a table past `error_after` is left out of "
        "the build and its tasks are skipped, saying which table is late by how much. Totals that "
        "must agree across layers are dbt tests of the models (`totals_agree`); after the build, "
        "`model_freshness` records the age of the built models' newest rows."
    )
    with platform_dag(
        TRANSFORM_DAG_ID,
        doc_md=doc_md,
        tags=["transform", "dbt"],
        description="dbt silver, gold and mart models for each 6-hour batch",
    ) as dag:
        waits = [
            SourcePublishedSensor(
                task_id=f"wait_for_{source.name}",
                external_dag_id=ingestion_dag_id(source.name),
                external_task_id=PUBLISH_TASK_ID,
                inlets=[source_asset(source)],
                timeout=6 * 3600,
            )
            for source in sources
        ]
        freshness = FreshnessCheckOperator(task_id=FRESHNESS_TASK_ID, fail_on_error=False, pool=config.WAREHOUSE_POOL)
        model_freshness = ModelFreshnessOperator(
            task_id="model_freshness",
            pool=config.WAREHOUSE_POOL,
            # models skipped on stale input do not hold the checks of the others
            trigger_rule="none_failed",
        )
        group = dbt_task_group(freshness_task_id=FRESHNESS_TASK_ID)
        # beside the model tasks' reports, not after them: it reads what the build wrote
        waits >> freshness >> group
        the_build(group) >> model_freshness
    return dag


#: erasure runs daily (and whenever triggered with requests), after the night's batches
ERASURE_CRON = "0 3 * * *"


def erasure_dag() -> DAG:
    """GDPR erasure: every pending request, daily and on demand."""
    from sluice.erasure.operators import GdprEraseOperator

    doc_md = (
        "## GDPR erasure\n\nDaily, and on demand: trigger with the conf "
        '`{"requests": [{"email": "person@example.com"}]}` (any declared identifier type; '
        "several requests at once), or write rows to the lake's `erasure/requests` table. Each "
        "request is resolved to every identifier held for the person, erased from every "
        "warehouse table and, through the subject index, from the bronze files that hold them, "
        "purged after `SLUICE_ERASURE_RETENTION_HOURS`, verified by a scan, and audited in "
        "`erasure/audit` by id and salted hash only."
    )
    with platform_dag(
        ERASURE_DAG_ID,
        doc_md=doc_md,
        tags=["erasure", "gdpr"],
        schedule=batch_timetable(ERASURE_CRON),
        description="Erase people from every store, provably",
    ) as dag:
        GdprEraseOperator(task_id="erase", pool=config.WAREHOUSE_POOL)
    return dag
