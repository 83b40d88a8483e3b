"""What happens to a check's figures: kept, sent, alerted on.

:func:`report` takes the results of one check task and

- appends them to the lake's ``ops/check_results`` (:mod:`sluice.checks.results`),
- writes them to the warehouse's ``ops.batch_metrics`` (:mod:`sluice.checks.warehouse`),
- sends them through Airflow's metrics (:mod:`sluice.checks.stats`),
- raises one incident per (table, check) past a threshold (``<check>/<table>``, through
  :func:`sluice.alerting.alerts.alert`: repeats are counted, not sent) and resolves the
  incident of every (table, check) back within its thresholds.

Plain Python: the operators in :mod:`sluice.checks.operators` call it with their context.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sluice.checks import results as results_table
from sluice.checks.results import ERROR, PASS, WARN, CheckResult
from sluice.lake.storage import Lake

log = logging.getLogger(__name__)

_RANK = {PASS: 0, WARN: 1, ERROR: 2}
TITLES = {"freshness": "Table late"}


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=_RANK.__getitem__, default=PASS)


def incident_key(check: str, table: str) -> str:
    """One incident per (table, check): ``completeness/bronze.faker__users``."""
    return f"{check}/{table}"


@dataclass
class Report:
    """What :func:`report` did.

    :param results: every figure recorded
    :param alerted: incident keys alerted on (sent or counted as a repeat)
    :param resolved: incident keys resolved (or found with nothing open) of the (table, check)
        pairs held to a threshold
    :param blocking: the blocking errors, which stop what follows the check
    """

    results: list[CheckResult]
    alerted: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    blocking: list[CheckResult] = field(default_factory=list)

    @property
    def errors(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == ERROR]

    def blocking_summary(self) -> str:
        return "; ".join(f"{r.table_name} {r.check}: {r.detail}" for r in self.blocking)


def report(
    results: Sequence[CheckResult],
    *,
    lake: Lake,
    connection: Any = None,
    context: Mapping[str, Any] | None = None,
    incident_table: Callable[[CheckResult], str] = lambda result: result.table_name,
) -> Report:
    """Record ``results`` everywhere and alert on them.

    :param lake: holds ``ops/check_results`` and the incident state
    :param connection: the warehouse (DB-API); None leaves ``ops.batch_metrics`` alone
    :param context: the Airflow context of the checking task (names DAG, run, interval in alerts)
    :param incident_table: the table an incident is about, for a result (the lake's and
        the warehouse's copy of a source table can share one incident)
    """
    from sluice.alerting.alerts import alert, resolve
    from sluice.checks.stats import emit

    outcome = Report(list(results))
    if not outcome.results:
        return outcome
    results_table.record(lake, outcome.results)
    if connection is not None:
        from sluice.checks.warehouse import write_batch_metrics

        write_batch_metrics(connection, outcome.results)
    emit(outcome.results)
    groups: dict[tuple[str, str], list[CheckResult]] = {}
    for result in outcome.results:
        groups.setdefault((incident_table(result), result.check), []).append(result)
    for (table, check), members in groups.items():
        key = incident_key(check, table)
        status = worst(r.status for r in members)
        if status == PASS:
            if any(r.threshold is not None for r in members):  # figures only recorded never open one
                resolve(key, lake=lake)
                outcome.resolved.append(key)
            continue
        breached = [r for r in members if r.status != PASS]
        source = next((r.source for r in members if r.source), None)
        alert(
            key,
            "; ".join(r.detail for r in breached),
            title=f"{TITLES.get(check, check.capitalize() + ' threshold breached')}: {table}",
            kind=check,
            context=context,
            source=source,
            model=None if source else table.rsplit(".", 1)[-1],
            lake=lake,
        )
        outcome.alerted.append(key)
        log.warning("%s %s: %s", status.upper(), key, "; ".join(r.detail for r in breached))
    outcome.blocking = [r for r in outcome.results if r.status == ERROR and r.blocking]
    return outcome
