"""Moments in UTC, whatever hands them over (Airflow's pendulum datetimes, naive ones, ISO text)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def as_utc(moment: Any) -> datetime | None:
    """``moment`` as a datetime in UTC (naive ones are UTC; None stays None).

    :raises TypeError: neither a datetime nor ISO 8601 text
    """
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if not isinstance(moment, datetime):
        raise TypeError(f"expected a timestamp, got {moment!r}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return datetime.fromtimestamp(moment.timestamp(), UTC)
