"""The task callbacks every platform DAG gets, through ``dag_builder.DEFAULT_ARGS``.

Imported while the DAG folder is parsed, so this module imports nothing else: the
alerting code, the lake and the Slack provider load only when a callback runs. A
callback never raises (its failure would only hide the task's own outcome in the log).
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)


def on_task_failure(context: Any) -> None:
    """Airflow calls this once a task has failed its last try: alert, once per incident."""
    started = time.perf_counter()
    try:
        from sluice.alerting.alerts import task_failed

        outcome = task_failed(context)
        log.info("Failure alert: %s in %.0f ms", outcome.action, (time.perf_counter() - started) * 1000)
    except Exception:
        log.exception("The failure alert could not be handled; the task's failure stands as recorded")


def on_task_success(context: Any) -> None:
    """Airflow calls this when a task succeeds: resolve its failure incident, if one is open."""
    try:
        from sluice.alerting.alerts import task_succeeded

        task_succeeded(context)
    except Exception:
        log.exception("Could not check for an incident to resolve; the task's success stands")


def on_batch_late(context: Any = None, tags: list[str] | None = None) -> None:
    """Airflow 3 deadline callback (run by the executor): a batch run missed its deadline.

    :param context: what the scheduler hands a deadline callback: ``dag_run`` (the run as
        the REST API shows it) and ``deadline`` (``deadline_time``)
    :param tags: the DAG's tags, given when the DAG was defined (the run carries none)
    """
    try:
        from sluice.alerting.alerts import batch_late

        run = (context or {}).get("dag_run") or {}
        outcome = batch_late(
            run["dag_id"],
            run.get("dag_run_id") or run.get("run_id"),
            deadline=((context or {}).get("deadline") or {}).get("deadline_time"),
            interval_start=run.get("data_interval_start"),
            interval_end=run.get("data_interval_end"),
            tags=tags or (),
        )
        log.info("Late-batch alert: %s", outcome.action)
    except Exception:
        log.exception("The late-batch alert could not be handled")


def on_sla_miss(dag: Any, task_list: Any, blocking_task_list: Any, slas: Any, blocking_tis: Any) -> None:
    """Airflow 2.11 ``sla_miss_callback`` (scheduled runs only): tasks of a batch not done
    within their SLA after the interval ended. One alert per DAG: the earliest late run names it."""
    try:
        from sluice.alerting.alerts import batch_late

        sla = min(slas, key=lambda miss: miss.execution_date)
        run = dag.get_dagrun(execution_date=sla.execution_date)
        end = run.data_interval_end
        batch_late(
            dag.dag_id,
            run.run_id,
            deadline=end + dag.default_args["sla"] if end and dag.default_args.get("sla") else None,
            interval_start=run.data_interval_start,
            interval_end=end,
            tags=dag.tags,
        )
    except Exception:
        log.exception("The SLA-miss alert could not be handled")


def on_dag_success(context: Any) -> None:
    """A DAG run succeeded: its late-batch incident, if open, is resolved."""
    try:
        from sluice.alerting.alerts import batch_finished

        run = context.get("dag_run")
        batch_finished(run.dag_id, run.run_id)
    except Exception:
        log.exception("Could not check for a late-batch incident to resolve")
