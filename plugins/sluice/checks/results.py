"""Results of the platform's checks (freshness and data-integrity metrics), one row each.

Every check of a batch appends its rows, in one commit, to the lake's Delta table
``ops/check_results``. The health page reads them there: the API server must not open
the embedded DuckDB file, which takes one writer process at a time while batches run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sluice.alerting import settings
from sluice.lake.storage import Lake, maintain_table

#: A check's outcome: within its threshold, past its warning threshold (alerts, passes),
#: past its error threshold (alerts; fails the check and, when blocking, stops what follows).
PASS, WARN, ERROR = "pass", "warn", "error"
STATUSES = (PASS, WARN, ERROR)
#: The kinds of check (``accuracy``: figures recorded before totals across layers became dbt tests, still read).
CHECKS = ("freshness", "completeness", "uniqueness", "validity", "timeliness", "consistency", "volume", "accuracy")
#: Every this many table versions (check runs), their small files are compacted and old ones vacuumed.
MAINTENANCE_EVERY = 100


@dataclass(frozen=True)
class CheckResult:
    """One measured figure of one table for one batch, and how it compares to its threshold.

    :param checked_at: when it was measured (UTC)
    :param dag_id: the DAG whose run measured it
    :param batch: the batch measured (``20260101T000000Z``; the run's interval start)
    :param source: the source the table belongs to (None for a model spanning sources)
    :param table_name: the table measured: ``bronze.faker__users``, ``marts.revenue_per_customer``,
        or a lake table as ``lake:bronze/faker/users``
    :param check: one of :data:`CHECKS`
    :param metric: the figure: ``lag_seconds``, ``null_rate:email``, ``duplicate_keys``,
        ``quarantined:<reason>``, ``landing_latency_seconds``, ``row_count_difference``, ``z_score``...
    :param value: the figure's value
    :param threshold: the threshold it was compared to (None when only recorded)
    :param status: one of :data:`STATUSES`
    :param blocking: whether an ``error`` stops the models downstream
    :param detail: one sentence for people: what was measured against what
    """

    checked_at: datetime
    dag_id: str
    batch: str
    source: str | None
    table_name: str
    check: str
    metric: str
    value: float
    threshold: float | None
    status: str
    blocking: bool
    detail: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check result status {self.status!r}: expected one of {', '.join(STATUSES)}")
        if self.check not in CHECKS:
            raise ValueError(f"check {self.check!r}: expected one of {', '.join(CHECKS)}")


class CheckRun:
    """The results of one check run, the fields they share filled in once.

    :param checked_at: when the run measured
    :param dag_id: the DAG whose run it is
    :param batch: the batch measured
    :param source: the source of the tables measured, if one
    :param table_name: the table measured, if one; else each :meth:`record` names its own
    """

    def __init__(
        self, *, checked_at: datetime, dag_id: str, batch: str, source: str | None = None, table_name: str = ""
    ) -> None:
        self.common = {"checked_at": checked_at, "dag_id": dag_id, "batch": batch}
        self.source, self.table_name = source, table_name
        self.results: list[CheckResult] = []

    def record(
        self,
        check: str,
        metric: str,
        value: float,
        detail: str,
        *,
        threshold: float | None = None,
        status: str = PASS,
        blocking: bool = False,
        table_name: str | None = None,
        source: str | None = None,
    ) -> None:
        """A figure, kept without a threshold unless one is given; ``table_name`` and
        ``source`` default to the run's."""
        self.results.append(
            CheckResult(
                **self.common,
                source=source or self.source,
                table_name=table_name or self.table_name,
                check=check,
                metric=metric,
                value=float(value),
                threshold=threshold,
                status=status,
                blocking=blocking,
                detail=detail,
            )
        )


def schema() -> Any:
    """The table's Arrow schema, in :class:`CheckResult`'s field order."""
    import pyarrow as pa

    types = {
        "checked_at": pa.timestamp("us", tz="UTC"),
        "value": pa.float64(),
        "threshold": pa.float64(),
        "blocking": pa.bool_(),
    }
    return pa.schema([pa.field(f.name, types.get(f.name, pa.string())) for f in dataclasses.fields(CheckResult)])


def table_path(lake: Lake) -> str:
    return lake.path(settings.CHECK_RESULTS_FOLDER)


def record(lake: Lake, results: Iterable[CheckResult]) -> int:
    """Append ``results`` to the table in one commit; the number of rows written.

    Each check run adds a small file, which every read of the table opens: every
    :data:`MAINTENANCE_EVERY` versions the files are compacted.
    """
    import pyarrow as pa

    rows = [dataclasses.asdict(result) for result in results]
    if rows:
        table = lake.append_to_table(table_path(lake), pa.Table.from_pylist(rows, schema=schema()))
        maintain_table(table, every=MAINTENANCE_EVERY)
    return len(rows)


def latest(lake: Lake) -> list[CheckResult]:
    """The newest result of each (table, check, metric), newest first; empty without a table."""
    table = lake.delta_table(table_path(lake))
    if table is None:
        return []
    import pyarrow as pa

    keys = ["table_name", "check", "metric"]
    data = table.to_pyarrow_table()
    fields = data.column_names
    # in Arrow: a year of results is ~10^5 rows a source, too many to turn into Python objects
    newest_at = data.group_by(keys).aggregate([("checked_at", "max")]).rename_columns([*keys, "checked_at"])
    data = data.append_column("row", pa.array(range(data.num_rows), pa.int64()))
    newest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in sorted(
        data.join(newest_at, keys=[*keys, "checked_at"], join_type="inner").to_pylist(), key=lambda row: row["row"]
    ):
        newest.setdefault((row["table_name"], row["check"], row["metric"]), row)
    # newest first; a check run's figures in the order it recorded them
    rows = sorted(newest.values(), key=lambda row: row["checked_at"], reverse=True)
    return [CheckResult(**{name: row[name] for name in fields}) for row in rows]
