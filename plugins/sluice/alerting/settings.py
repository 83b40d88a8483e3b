"""Alert settings, read from the environment when an alert is sent (the late-batch deadline:
when DAGs are parsed)."""

from __future__ import annotations

import logging
import os
import sys
from datetime import timedelta

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "slack_alerts"
DEFAULT_TIMEOUT_SECONDS = 2.0
#: Lake folders (relative to the lake's root) of the incident table and of its open markers.
INCIDENTS_FOLDER = "ops/incidents"
OPEN_MARKERS_FOLDER = "ops/open_incidents"
#: Lake folder of the check results (freshness, data-integrity metrics).
CHECK_RESULTS_FOLDER = "ops/check_results"


def slack_conn_id() -> str:
    """Airflow connection of Slack: type ``slackwebhook`` (webhook URL) or ``slack`` (API token)."""
    return os.environ.get("SLUICE_SLACK_CONN_ID") or DEFAULT_CONN_ID


def default_channel() -> str | None:
    """Channel of alerts whose source or model names none (``#data-alerts``)."""
    return os.environ.get("SLUICE_SLACK_CHANNEL") or None


def default_owner() -> str | None:
    """Who is mentioned when the source or model names no owner (``<@U024BE7LH>``,
    ``<!subteam^S0123ABC>``, ``<!here>``)."""
    return os.environ.get("SLUICE_SLACK_OWNER") or None


def timeout_seconds() -> float:
    """Longest a Slack call may hold up a task (``SLUICE_SLACK_TIMEOUT_SECONDS``, default 2)."""
    text = os.environ.get("SLUICE_SLACK_TIMEOUT_SECONDS")
    if not text:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0
    if not 0 < seconds <= 60:
        # a bad setting must not cost an alert: say so and use the default
        log.error(
            "SLUICE_SLACK_TIMEOUT_SECONDS=%r is not a number of seconds in (0, 60]: using %s",
            text,
            DEFAULT_TIMEOUT_SECONDS,
        )
        return DEFAULT_TIMEOUT_SECONDS
    return seconds


DEFAULT_LATE_HOURS = 5.0


def late_after() -> timedelta:
    """How long after its interval ended a batch may still be running before it is late
    (``SLUICE_BATCH_LATE_HOURS``, default 5). Read when DAGs are parsed: a bad value fails
    the DAG's import, naming the variable."""
    text = os.environ.get("SLUICE_BATCH_LATE_HOURS")
    if not text:
        return timedelta(hours=DEFAULT_LATE_HOURS)
    try:
        hours = float(text)
    except ValueError:
        hours = -1
    if not 0 < hours <= 24 * 7:
        raise ValueError(f"SLUICE_BATCH_LATE_HOURS={text!r}: expected a number of hours in (0, 168]")
    return timedelta(hours=hours)


def deadlines_watched() -> bool:
    """Whether this process parses DAGs for runs a scheduler watches. ``airflow dags test``
    runs a DAG in its own process, with no scheduler to check a deadline, and on Airflow 3.3
    cannot finish a run of a DAG that has one (apache/airflow#73428)."""
    return sys.argv[1:3] != ["dags", "test"]
