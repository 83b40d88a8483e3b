"""The check figures, sent through Airflow's own metrics (StatsD, Datadog or OpenTelemetry).

A deployment that sends Airflow's metrics somewhere (``[metrics] statsd_on = True`` with
``statsd_host``/``statsd_port``, or ``otel_on``) receives these too, under Airflow's prefix
(``statsd_prefix``, default ``airflow``):

==========================================================  =======  ==========================================
name                                                         type     value
==========================================================  =======  ==========================================
``sluice.rows_landed.<source>.<stream>``                     gauge    rows of the batch in the bronze table
``sluice.rows_quarantined.<source>.<stream>``                gauge    records of the batch sent to quarantine
``sluice.rows_changed.<source>.<stream>``                    gauge    records Airbyte's warehouse destination changed
``sluice.bytes_landed.<source>.<stream>``                    gauge    Parquet bytes the batch landed
``sluice.landing_latency_seconds.<source>.<stream>``         gauge    interval end to the batch's landing
``sluice.freshness_lag_seconds.<table>``                     gauge    age of a table's newest data
``sluice.breaches.<check>.<status>``                         counter  checks past a threshold (warn, error)
==========================================================  =======  ==========================================

``<table>`` is the checked table with ``:`` and ``/`` as dots: ``bronze.faker__users`` (the
warehouse), ``lake.bronze.faker.users`` (the lake's Delta table), ``silver.customers``.
Nothing here raises: a metrics backend that fails is logged, and the check goes on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from sluice.checks.results import PASS, CheckResult
from sluice.core.compat import metrics

log = logging.getLogger(__name__)

PREFIX = "sluice"
#: (check, metric) of a stream's figure -> its name, followed by ``.<source>.<stream>``
STREAM_FIGURES = {
    ("volume", "row_count"): "rows_landed",
    ("validity", "quarantined"): "rows_quarantined",
    ("validity", "changed"): "rows_changed",
    ("volume", "bytes"): "bytes_landed",
    ("timeliness", "landing_latency_seconds"): "landing_latency_seconds",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def metric_name(*parts: str) -> str:
    """``sluice.<parts>``, each part with what StatsD cannot carry made a dot."""
    return ".".join([PREFIX, *(_UNSAFE.sub(".", part).strip(".") for part in parts)])


def figures(results: Iterable[CheckResult]) -> list[tuple[str, str, float]]:
    """(kind, name, value) to send for ``results``: ``gauge`` or ``incr``."""
    out: list[tuple[str, str, float]] = []
    for result in results:
        figure = STREAM_FIGURES.get((result.check, result.metric))
        if figure and result.source:
            out.append(("gauge", metric_name(figure, result.source, stream_of(result)), result.value))
        elif (result.check, result.metric) == ("freshness", "lag_seconds"):
            out.append(("gauge", metric_name("freshness_lag_seconds", result.table_name), result.value))
        if result.status != PASS:
            out.append(("incr", metric_name("breaches", result.check, result.status), 1))
    return out


def stream_of(result: CheckResult) -> str:
    """The stream of a figure about ``bronze.<source>__<stream>``."""
    table = result.table_name.split(".", 1)[-1]
    prefix = f"{result.source}__"
    return table[len(prefix) :] if table.startswith(prefix) else table


def emit(results: Iterable[CheckResult]) -> int:
    """Send the figures of ``results`` through Airflow's metrics; how many were sent."""
    sent = 0
    try:
        stats = metrics()
        for kind, name, value in figures(results):
            if kind == "gauge":
                stats.gauge(name, int(value) if float(value).is_integer() else value)
            else:
                stats.incr(name, int(value))
            sent += 1
    except Exception:
        log.exception("Check figures could not be sent to Airflow's metrics backend")
    return sent
