"""Airflow 2.11 and 3.x differences, in one place (as Airflow's providers keep theirs in
``version_compat.py``): every other module asks here instead of reading Airflow's version.

Nothing heavy is imported at module level: DAG parsing imports this module.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

try:
    from airflow import __version__ as _airflow_version
except ImportError:  # plain Python, no Airflow (benchmarks, scripts)
    _airflow_version = None

AIRFLOW_INSTALLED = _airflow_version is not None
AIRFLOW_V_3_0_PLUS = AIRFLOW_INSTALLED and int(str(_airflow_version).split(".")[0]) >= 3
AIRFLOW_2 = AIRFLOW_INSTALLED and not AIRFLOW_V_3_0_PLUS
#: Whether tasks may wait in the triggerer: on 3.x every scheduler that runs Sluice's DAGs
#: has one beside it (``make up``, ``make backfill``'s own); Airflow 2.11's ``airflow dags
#: backfill`` runs none, so there tasks wait on workers.
WAITS_IN_THE_TRIGGERER = AIRFLOW_V_3_0_PLUS


def get_connection(conn_id: str) -> Any | None:
    """The Airflow connection ``conn_id``; None where it is not defined, or without Airflow."""
    if not AIRFLOW_INSTALLED:
        return None
    from airflow.providers.common.compat.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # a missing connection is a different class on each version
        if type(exc).__name__ not in ("AirflowNotFoundException", "AirflowException"):
            raise
        return None


def xcom_model() -> Any:
    """The ORM model of XCom rows in the metadata database."""
    if AIRFLOW_2:
        from airflow.models.xcom import XCom

        return XCom
    from airflow.models.xcom import XComModel

    return XComModel


def metrics() -> Any:
    """Airflow's metrics interface (``incr``, ``gauge``, ``timing``), sending where ``[metrics]``
    says (StatsD, Datadog or OpenTelemetry).

    On 3.x a task run in-process (``dag.test``) may not have set the backend up, so it is set
    up here from ``[metrics]``, as the task runner does (idempotent: the same configuration).
    """
    if AIRFLOW_2:
        from airflow.stats import Stats

        return Stats
    from airflow.sdk.configuration import conf
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    stats.initialize(
        factory=stats_utils.get_stats_factory(), export_legacy_names=conf.getboolean("metrics", "legacy_names_on")
    )
    return stats


def ui_base_url() -> str | None:
    """The Airflow UI's base URL, without a trailing slash (None without Airflow's configuration)."""
    if not AIRFLOW_INSTALLED:
        return None
    from airflow.configuration import conf

    if AIRFLOW_2:
        base = conf.get("webserver", "base_url", fallback="http://localhost:8080")
    else:
        base = conf.get("api", "base_url", fallback=None) or "http://localhost:8080"
    return base.rstrip("/")


def run_path(dag_id: str, run_id: str) -> str:
    """A DAG run's page in the Airflow UI, below the UI's base URL."""
    if AIRFLOW_2:
        return f"/dags/{quote(dag_id)}/grid?dag_run_id={quote(run_id, safe='')}"
    return f"/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"
