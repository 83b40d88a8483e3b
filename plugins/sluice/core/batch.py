"""Batch identity: a batch is one data interval, named by its start in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

BATCH_FORMAT = "%Y%m%dT%H%M%SZ"
#: The same format as a Jinja expression over the task context, for templated fields.
BATCH_ID_TEMPLATE = "{{ data_interval_start.strftime('%Y%m%dT%H%M%SZ') }}"
BATCH_END_TEMPLATE = "{{ data_interval_end.strftime('%Y%m%dT%H%M%SZ') }}"


def batch_id(start: datetime) -> str:
    """``20261120T060000Z`` for an interval starting 2026-11-20 06:00 UTC.

    Lexicographic order of batch ids is time order, which the warehouse relies on.
    """
    if start.tzinfo is None:
        raise ValueError(f"batch start {start!r} has no timezone")
    return start.astimezone(UTC).strftime(BATCH_FORMAT)


def batch_start(batch: str) -> datetime:
    """Inverse of :func:`batch_id`; rejects anything not in the batch format."""
    try:
        return datetime.strptime(batch, BATCH_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{batch!r} is not a batch id like 20261120T060000Z") from None


def parse_utc(text: str) -> datetime:
    """An ISO date or timestamp from a command line; without an offset it is UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
