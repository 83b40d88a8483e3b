"""Alert once per incident, and say once when it is resolved.

Checks that find a problem call :func:`alert` with a key naming the incident, and
:func:`resolve` with the same key once it is gone::

    from sluice.alerting.alerts import alert, resolve

    alert("freshness/bronze.faker__users", "last batch 13 h ago (error after 12 h)",
          title="Table late: bronze.faker__users", kind="freshness", source="faker", context=context)
    resolve("freshness/bronze.faker__users")

The first alert of an incident is sent; repeats while it is open are counted in its state
and not sent; the first resolve sends one "resolved" message; a resolve with nothing open
does nothing. Task failures (after their retries) and successes do the same through the
callbacks in :mod:`sluice.alerting.callbacks`, keyed ``<dag_id>/<task_id>``.

Nothing here raises: a Slack or lake problem is logged, and the task goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sluice.alerting.incidents import Incident, IncidentStore
from sluice.alerting.messages import (
    Message,
    alert_message,
    describe_exception,
    event_from_context,
    resolved_message,
    utc_text,
)
from sluice.alerting.routing import Route, route_for
from sluice.core.compat import run_path, ui_base_url
from sluice.lake.storage import Lake, open_lake

if TYPE_CHECKING:
    from sluice.alerting.slack import Delivery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a call did.

    :param action: ``opened`` (sent), ``repeated`` (counted, not sent), ``resent`` (an open
        incident whose message never got through, sent again), ``resolved`` (sent) or
        ``none`` (nothing was open to resolve)
    :param delivery: how its message went; None when nothing was sent
    :param incident: the incident after the change; None when its state could not be kept
    """

    action: str
    delivery: Delivery | None = None
    incident: Incident | None = None


def alert(
    incident_key: str,
    what: Any,
    *,
    title: str = "Alert",
    kind: str = "alert",
    context: Mapping[str, Any] | None = None,
    source: str | None = None,
    model: str | None = None,
    lake: Lake | None = None,
    **fields: Any,
) -> Outcome:
    """Raise the incident ``incident_key``: send an alert unless it is already open.

    :param incident_key: names the incident, the same for every repeat (``freshness/<table>``)
    :param what: what broke, in a sentence (shortened, email addresses removed)
    :param title: the alert's headline
    :param kind: the family of problem, kept in the incident's state
    :param context: the Airflow context of the task raising it: fills the DAG, task, run,
        interval and log link
    :param source: the Sluice source concerned (its ``meta`` routes the alert)
    :param model: the dbt model concerned (its ``meta`` routes the alert)
    :param lake: where the incident state lives (default: the platform's lake)
    :param fields: overrides of :class:`~sluice.alerting.messages.Event` fields
        (``dag_id``, ``interval_start``, ``log_url``, ...)
    """
    context = context or {}
    event = event_from_context(context, title=title, what=what, kind=kind, source=source, model=model, **fields)

    def route() -> Route:
        return route_for(source=source, model=model, dag=context.get("dag"), task=context.get("task"))

    try:
        store = IncidentStore(lake or open_lake())
        change = store.occurred(incident_key, event, route)
    except Exception:
        # without its state an incident cannot be deduplicated; a repeat beats a missed alert
        log.exception("Incident state unavailable: alert %r is sent without suppressing repeats", incident_key)
        where = route()
        return Outcome("opened", deliver(alert_message(incident_key, event, where.owner), where))
    row = change.row
    if not change.notify:
        log.warning(
            "Alert %r not sent again: open since %s, seen %d times (%s)",
            incident_key,
            row.opened_at.isoformat(timespec="seconds"),
            row.occurrences,
            event.what,
        )
        return Outcome("repeated", None, row)
    delivery = deliver(alert_message(incident_key, event, row.owner), Route(row.channel, row.owner))
    _record(store, row, delivery)
    return Outcome("opened" if change.insert else "resent", delivery, row)


def resolve(
    incident_key: str,
    *,
    run_id: str | None = None,
    map_index: int = -1,
    lake: Lake | None = None,
) -> Outcome:
    """Resolve the incident ``incident_key`` if it is open, with one "resolved" message.

    :param incident_key: the key its alerts were raised with
    :param run_id: the DAG run that recovered (with ``map_index``: a mapped task's sibling
        that succeeded in the failed run resolves nothing)
    :param map_index: the recovered task's map index (-1 when not mapped)
    :param lake: where the incident state lives (default: the platform's lake)
    """
    try:
        store = IncidentStore(lake or open_lake())
        change = store.resolve(incident_key, run_id=run_id, map_index=map_index)
    except Exception:
        log.exception("Incident state unavailable: %r could not be resolved", incident_key)
        return Outcome("none")
    if change is None:
        return Outcome("none")
    row = change.row
    message = resolved_message(incident_key, row.title, row.occurrences, row.opened_at, row.owner)
    delivery = deliver(message, Route(row.channel, row.owner))
    _record(store, row, delivery)
    return Outcome("resolved", delivery, row)


def task_key(context: Mapping[str, Any]) -> str:
    """The incident key of a task's failures: ``<dag_id>/<task_id>``."""
    ti = context.get("task_instance") or context.get("ti")
    return f"{ti.dag_id}/{ti.task_id}"


def task_failed(context: Mapping[str, Any], lake: Lake | None = None) -> Outcome:
    """A task failed after its retries (``on_failure_callback``).

    An exception marked ``alerted`` (a check's breach, see :mod:`sluice.checks.operators`)
    has had its own alert: the failure is not announced twice.
    """
    ti = context.get("task_instance") or context.get("ti")
    if getattr(context.get("exception"), "alerted", False):
        log.info("%s.%s failed on a breach its check alerted on", ti.dag_id, ti.task_id)
        return Outcome("none")
    return alert(
        task_key(context),
        describe_exception(context.get("exception")),
        title=f"Task failed: {ti.dag_id}.{ti.task_id}",
        kind="task_failure",
        context=context,
        lake=lake,
    )


def task_succeeded(context: Mapping[str, Any], lake: Lake | None = None) -> Outcome:
    """A task succeeded (``on_success_callback``): its failure incident, if open, is resolved."""
    ti = context.get("task_instance") or context.get("ti")
    map_index = getattr(ti, "map_index", -1)
    return resolve(
        task_key(context),
        run_id=context.get("run_id") or getattr(ti, "run_id", None),
        map_index=-1 if map_index is None else int(map_index),
        lake=lake,
    )


def late_key(dag_id: str) -> str:
    """The incident key of a DAG's batches finishing late: ``<dag_id>/late``."""
    return f"{dag_id}/late"


def batch_late(
    dag_id: str,
    run_id: str,
    *,
    deadline: Any = None,
    interval_start: Any = None,
    interval_end: Any = None,
    tags: Iterable[str] = (),
    lake: Lake | None = None,
) -> Outcome:
    """A batch run is not finished by its deadline (Airflow 3 deadline alert, 2.11 SLA miss).

    :param dag_id: the late DAG
    :param run_id: the late run
    :param deadline: when it should have finished
    :param interval_start: start of the run's data interval
    :param interval_end: end of the run's data interval
    :param tags: the DAG's tags (``source:<name>`` routes the alert to the source's owner)
    :param lake: where the incident state lives (default: the platform's lake)
    """
    due = f" by {utc_text(deadline)}" if deadline else ""
    return alert(
        late_key(dag_id),
        f"run {run_id} had not finished{due}",
        title=f"Batch late: {dag_id}",
        kind="deadline",
        context={"dag": SimpleNamespace(dag_id=dag_id, tags=list(tags))},
        lake=lake,
        run_id=run_id,
        interval_start=interval_start,
        interval_end=interval_end,
        log_url=run_url(dag_id, run_id),
    )


def batch_finished(dag_id: str, run_id: str | None = None, lake: Lake | None = None) -> Outcome:
    """A run of ``dag_id`` succeeded: its late-batch incident, if open, is resolved."""
    return resolve(late_key(dag_id), lake=lake)


def run_url(dag_id: str, run_id: str) -> str | None:
    """The run's page in the Airflow UI (None when Airflow's configuration is unavailable)."""
    base = ui_base_url()
    return None if base is None else base + run_path(dag_id, run_id)


def deliver(message: Message, route: Route) -> Delivery:
    """Send ``message`` (the Slack provider is imported only now: most calls send nothing)."""
    from sluice.alerting.slack import deliver

    return deliver(message, route)


def _record(store: IncidentStore, row: Incident, delivery: Delivery) -> None:
    try:
        store.delivered(row, delivery.status, delivery.error)
    except Exception:
        log.exception("Could not record the delivery of %r (%s)", row.incident_key, delivery.status)
