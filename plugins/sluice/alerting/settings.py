"""Where alert state lives in the lake, and when a batch is late (the other alert settings are
in :mod:`sluice.core.config`)."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta

from sluice.core import config

log = logging.getLogger(__name__)

#: Lake folders (relative to the lake's root) of the incident table and of its open markers.
INCIDENTS_FOLDER = "ops/incidents"
OPEN_MARKERS_FOLDER = "ops/open_incidents"
#: Lake folder of the check results (freshness, data-integrity metrics).
CHECK_RESULTS_FOLDER = "ops/check_results"


def timeout_seconds() -> float:
    """Longest a Slack call may hold up a task; a bad setting must not cost an alert: it is
    logged and the default used."""
    try:
        return config.slack_timeout_seconds()
    except ValueError as error:
        log.error("%s: using %s seconds", error, config.SLACK_TIMEOUT_SECONDS)
        return config.SLACK_TIMEOUT_SECONDS


def late_after() -> timedelta:
    """How long after its interval ended a batch may still be running before it is late
    (``SLUICE_BATCH_LATE_HOURS``). Read when DAGs are parsed: a bad value fails the DAG's
    import, naming the variable."""
    return timedelta(hours=config.batch_late_hours())


def deadlines_watched() -> bool:
    """Whether this process parses DAGs for runs a scheduler watches. ``airflow dags test``
    runs a DAG in its own process, with no scheduler to check a deadline, and on Airflow 3.3
    cannot finish a run of a DAG that has one (apache/airflow#73428)."""
    return sys.argv[1:3] != ["dags", "test"]
