"""Tests only: source-faker's records drawn against the batch's clock, not the wall clock.

On the ``PYTHONPATH`` of the processes a test starts (see ``pinned_connector_clock`` in
``tests/e2e/snapshot.py``), so every Python of the run imports it; it acts only in the
source-faker connector, started by an Airflow task. source-faker stamps ``updated_at``
with ``datetime.now()`` and draws a purchase's dates between its creation and ``now``
(in whole days, so the product and status drawn after them shift too): two runs of one
batch differ. Here that clock reads the end of the task's data interval, the moment a
scheduled sync of it would start: the task's logical date (which Airflow exports to the
environment of the processes a task starts) plus ``SLUICE_TEST_FAKER_CLOCK_HOURS``.

Only the generators' clock is pinned: the records' ``emitted_at`` (the lake's
``_airbyte_extracted_at``, which freshness measures) keeps the wall clock.
"""

from __future__ import annotations

import datetime as _datetime
import importlib.util
import os
import sys
import types

HOURS = os.environ.get("SLUICE_TEST_FAKER_CLOCK_HOURS")


def _interval_end() -> _datetime.datetime:
    # Airflow 3 exports the logical date as LOGICAL_DATE, 2.11 as EXECUTION_DATE
    logical = os.environ.get("AIRFLOW_CTX_LOGICAL_DATE") or os.environ.get("AIRFLOW_CTX_EXECUTION_DATE")
    if not logical:
        sys.stderr.write("source-faker's clock is to be pinned, but it was not started by an Airflow task\n")
        os._exit(2)
    start = _datetime.datetime.fromisoformat(logical).astimezone(_datetime.UTC)
    # naive UTC, as source-faker's own datetime.now() on a UTC machine
    return (start + _datetime.timedelta(hours=float(HOURS))).replace(tzinfo=None)


def _pin(now: _datetime.datetime) -> None:
    from source_faker import purchase_generator, streams, user_generator

    class PinnedDatetime(_datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return now if tz is None else now.replace(tzinfo=_datetime.UTC).astimezone(tz)

    clock = types.SimpleNamespace(**{**vars(_datetime), "datetime": PinnedDatetime})
    for module in (purchase_generator, streams, user_generator):
        module.datetime = clock
    # its default, the connector's import time, was taken before the pin
    purchase_generator.PurchaseGenerator.random_date_in_range.__defaults__ = (now,)


if HOURS and importlib.util.find_spec("source_faker") is not None:
    _pin(_interval_end())
