"""What an alert says: the event it is about, and the Slack text for it.

Plain Python (no Airflow, no Slack): the same text goes to Slack, to the task log when no
Slack connection is configured, and into the incident state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sluice.core.times import as_utc

#: Longest "what broke" kept; Slack truncates a section at 3,000 characters.
MAX_WHAT = 600
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


@dataclass(frozen=True)
class Event:
    """One occurrence of a problem (or of its recovery).

    :param title: the headline, e.g. ``Task failed`` or ``Table late``
    :param what: what broke: the exception, the lag, the breached threshold (shortened and
        stripped of email addresses before it is stored or sent)
    :param kind: the family of problem (``task_failure``, ``freshness``, ``threshold``, ...)
    :param dag_id: the DAG it happened in, if any
    :param task_id: the task it happened in, if any
    :param run_id: the DAG run it happened in, if any
    :param map_index: the mapped task's index (-1 when not mapped)
    :param interval_start: start of the data interval concerned
    :param interval_end: end of the data interval concerned
    :param log_url: link to the task's log in the Airflow UI (to the DAG run, without a task)
    :param source: the Sluice source concerned: its ``meta`` routes the alert
    :param model: the dbt model concerned: its ``meta`` routes the alert
    """

    title: str
    what: str = ""
    kind: str = "alert"
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    map_index: int = -1
    interval_start: datetime | None = None
    interval_end: datetime | None = None
    log_url: str | None = None
    source: str | None = None
    model: str | None = None


def event_from_context(context: Mapping[str, Any], **fields: Any) -> Event:
    """An event filled from an Airflow task context (3.x and 2.11); ``fields`` override."""
    ti = context.get("task_instance") or context.get("ti")
    try:
        log_url = ti.log_url if ti is not None else None
    except Exception:  # the UI's base URL may be unset; the alert matters more than the link
        log_url = None
    values: dict[str, Any] = {
        "dag_id": getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": context.get("run_id") or getattr(ti, "run_id", None),
        "map_index": _int(getattr(ti, "map_index", -1)),
        "interval_start": context.get("data_interval_start"),
        "interval_end": context.get("data_interval_end"),
        "log_url": log_url,
    }
    values.update(fields)
    for bound in ("interval_start", "interval_end"):  # Airflow hands pendulum datetimes
        values[bound] = as_utc(values[bound])
    values.setdefault("title", "Alert")
    values["what"] = shorten(values.get("what", ""))
    return Event(**values)


def describe_exception(error: Any) -> str:
    """``Type: message`` of an exception (a string, as some callbacks get, is kept)."""
    if error is None:
        return "no error was recorded (the task was failed from outside, or timed out)"
    if isinstance(error, BaseException):
        text = str(error).strip()
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return str(error)


def shorten(text: Any, limit: int = MAX_WHAT) -> str:
    """``text`` cut to ``limit`` characters, email addresses replaced by ``<email>``."""
    text = _EMAIL.sub("<email>", str(text or "")).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class Message:
    """A Slack message: ``text`` (also the notification and log line) and Block Kit ``blocks``."""

    text: str
    blocks: list[dict[str, Any]]


def alert_message(key: str, event: Event, mention: str | None) -> Message:
    """The message that opens an incident."""
    where = " · ".join(
        part
        for part in (
            f"*DAG* `{_escape(event.dag_id)}`" if event.dag_id else "",
            f"*task* `{_escape(event.task_id)}`" if event.task_id else "",
            f"*interval* {_interval(event)}" if event.interval_start or event.interval_end else "",
        )
        if part
    )
    lines = [f":rotating_light: *{_escape(event.title)}*" + (f" {mention}" if mention else "")]
    if where:
        lines.append(where)
    if event.what:
        lines.append(f"*What broke:* {_escape(event.what)}")
    if event.log_url:
        # an alert about a whole run (a late batch) links to the run, not to a task's log
        lines.append(f"<{_link(event.log_url)}|{'Task log' if event.task_id else 'DAG run'}>")
    return _message("\n".join(lines), key, "repeats are counted, not sent, until it is resolved")


def resolved_message(key: str, title: str, occurrences: int, opened_at: datetime, mention: str | None) -> Message:
    """The one message that closes an incident."""
    times = "once" if occurrences == 1 else f"{occurrences} times"
    text = (
        f":white_check_mark: *Resolved: {_escape(title)}*"
        + (f" {mention}" if mention else "")
        + f"\nOpen since {utc_text(opened_at)}, seen {times}."
    )
    return _message(text, key, "resolved")


def _message(text: str, key: str, note: str) -> Message:
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"incident `{_escape(key)}`: {note}"}]},
    ]
    return Message(text=text, blocks=blocks)


def _escape(text: Any) -> str:
    """Slack's mrkdwn escapes: user text must not become a link or a mention."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str) -> str:
    return url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")


def _interval(event: Event) -> str:
    start, end = event.interval_start, event.interval_end
    return f"{utc_text(start) if start else '?'} → {utc_text(end) if end else '?'}"


def utc_text(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
