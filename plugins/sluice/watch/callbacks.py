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
        from sluice.watch.alerts import task_failed

        outcome = task_failed(context)
        log.info("Failure alert: %s in %.0f ms", outcome.action, (time.perf_counter() - started) * 1000)
    except Exception:
        log.exception("The failure alert could not be handled; the task's failure stands as recorded")


def on_task_success(context: Any) -> None:
    """Airflow calls this when a task succeeds: resolve its failure incident, if one is open."""
    try:
        from sluice.watch.alerts import task_succeeded

        task_succeeded(context)
    except Exception:
        log.exception("Could not check for an incident to resolve; the task's success stands")
