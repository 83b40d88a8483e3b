"""Data-integrity figures of one batch of a source, each checked against its threshold.

Per stream (thresholds from :mod:`sluice.core.thresholds`), with ``<table>`` the stream's
bronze table as the warehouse names it (``bronze.faker__users``):

================  =============================  ===========================================================
check             metric                         what it measures
================  =============================  ===========================================================
completeness      ``null_rate:<column>``         share of the batch's rows with the column null
uniqueness        ``duplicate_keys``             rows whose record key another row of the batch has
validity          ``quarantined_rate``           quarantined records / records read
                  ``quarantined``,               quarantined records, in all and per reason (recorded)
                  ``quarantined:<reason>``
timeliness        ``landing_latency_seconds``    from the interval's end to the batch's landing
consistency       ``row_count_difference``       lake partition rows vs warehouse batch rows
                  ``checksum_mismatch``          1 when the record keys differ (order-independent checksum)
volume            ``row_count``, ``bytes``       the batch's rows and landed bytes (recorded; the history)
                  ``z_score``                    rows against the earlier batches of the training period
================  =============================  ===========================================================

A source whose Airbyte connection writes straight into Snowflake is measured there
(:func:`measure_warehouse_stream`): validity counts what the destination changed to load
a record (``changed_rate``, ``changed``, ``changed:<reason>``) and consistency is left to
the landing, which compares the job's records with the tables.

Cheap by construction: null counts come from the bronze table's Delta statistics (no
data read), the record keys are read once (one column, streamed in bounded batches) for
duplicates and the checksum, and the warehouse computes its own checksum with the same
SQL (DuckDB and Snowflake), so no key leaves it.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sluice.checks.results import CheckResult, CheckRun
from sluice.core.batch import batch_start
from sluice.core.thresholds import CheckConfigError, Threshold, Volume, describe_duration
from sluice.lake.storage import Lake

log = logging.getLogger(__name__)

#: Hex digits of a key's md5 summed into the checksum (48 bits a key: no overflow for 10^20 rows).
CHECKSUM_DIGITS = 12
#: Rows per Arrow batch when a column of a batch is read from the lake.
READ_BATCH_ROWS = 65_536


def key_expression(columns: Sequence[str], quote: Callable[[str], str]) -> str:
    """The record key as one SQL value: its column, or its columns' text joined by ``|``
    (null when any of them is, as a missing key is)."""
    if len(columns) == 1:
        return quote(columns[0])
    nulls = " OR ".join(f"{quote(c)} IS NULL" for c in columns)
    joined = " || '|' || ".join(f"cast({quote(c)} AS varchar)" for c in columns)
    return f"(CASE WHEN {nulls} THEN NULL ELSE {joined} END)"


def _key_columns(key: str | Sequence[str]) -> list[str]:
    return [key] if isinstance(key, str) else list(key)


def checksum_sql(column: str, source: str) -> str:
    """``count(*)`` and an order-independent checksum of the key expression ``column`` over
    ``source`` (a table or subquery), in SQL that DuckDB and Snowflake compute alike: the sum
    over rows of the first :data:`CHECKSUM_DIGITS` hex digits of ``md5(cast(column as varchar))``."""
    digits = " + ".join(
        f"(position(substr(m, {i + 1}, 1) in '0123456789abcdef') - 1) * {16 ** (CHECKSUM_DIGITS - 1 - i)}"
        for i in range(CHECKSUM_DIGITS)
    )
    return (
        # each key's term is exact in any numeric type; the sum is a 38-digit decimal, since
        # a floating-point sum (fakesnow computes the terms as doubles) rounds past 2^53
        f"SELECT count(*), count(k), count(DISTINCT k), sum(cast({digits} AS decimal(38, 0))) FROM"
        f" (SELECT {column} AS k, md5(cast({column} AS varchar)) AS m FROM {source}) AS keyed"
    )


@dataclass(frozen=True)
class KeyFigures:
    """Rows of a batch and its record keys: rows, non-null keys, distinct keys, checksum."""

    rows: int
    keys: int
    distinct: int
    checksum: int


def _key_figures(row: Sequence[Any]) -> KeyFigures:
    rows, keys, distinct, checksum = row
    return KeyFigures(int(rows), int(keys or 0), int(distinct or 0), int(checksum or 0))


def lake_key_figures(table: Any, batch: str, key: str | Sequence[str]) -> KeyFigures:
    """:class:`KeyFigures` of the bronze table's partition ``batch``, computed by an
    in-memory DuckDB over the key column, read in bounded batches."""
    import duckdb

    from sluice.core import config
    from sluice.lake.files import BATCH_COLUMN
    from sluice.warehouse.target import DuckDB

    dataset = table.to_pyarrow_dataset(partitions=[(BATCH_COLUMN, "=", batch)])
    columns = _key_columns(key)
    batch_keys = dataset.scanner(columns=columns, batch_size=READ_BATCH_ROWS).to_reader()  # noqa: F841 (read by DuckDB)
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{config.duckdb_memory_limit()}'")
        return _key_figures(con.execute(checksum_sql(key_expression(columns, DuckDB().quote), "batch_keys")).fetchone())
    finally:
        con.close()


def warehouse_key_figures(connection: Any, relation: str, batch: str, key: str | Sequence[str]) -> KeyFigures:
    """:class:`KeyFigures` of ``batch`` in the warehouse's bronze ``relation``."""
    from sluice.lake.files import BATCH_COLUMN
    from sluice.warehouse.target import current

    quote = current().quote

    batch_start(batch)  # a well-formed batch id, safe to write into the statement
    rows = f"(SELECT * FROM {relation} WHERE {quote(BATCH_COLUMN)} = '{batch}') AS batch_rows"
    cursor = connection.cursor()
    try:
        cursor.execute(checksum_sql(key_expression(_key_columns(key), quote), rows))
        return _key_figures(cursor.fetchone())
    finally:
        cursor.close()


def batch_actions(table: Any, batch: str) -> Any:
    """The add actions (with their statistics) of ``batch``'s files in the table."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from sluice.lake.files import BATCH_COLUMN

    actions = pa.table(table.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return actions
    return actions.filter(pc.equal(actions.column(f"partition.{BATCH_COLUMN}"), batch))


def null_counts(table: Any, batch: str, columns: Sequence[str], actions: Any) -> dict[str, int]:
    """Nulls of ``columns`` in the batch, from the files' statistics where every file has
    them, else by reading the column."""
    counts = {}
    for column in columns:
        name = f"null_count.{column}"
        values = actions.column(name).to_pylist() if name in actions.column_names else [None]
        if values and all(value is not None for value in values):
            counts[column] = int(sum(values))
            continue
        from sluice.lake.files import BATCH_COLUMN

        dataset = table.to_pyarrow_dataset(partitions=[(BATCH_COLUMN, "=", batch)])
        counts[column] = sum(
            part.column(0).null_count
            for part in dataset.scanner(columns=[column], batch_size=READ_BATCH_ROWS).to_batches()
        )
    return counts


def quarantine_reasons(lake: Lake, source: str, stream: str, batch: str) -> dict[str, int]:
    """Quarantined records of the batch per reason (the reason up to its first colon)."""
    import posixpath

    import pyarrow.parquet as pq

    from sluice.ingest.landing import QUARANTINE_FILE, quarantine_folder

    path = posixpath.join(quarantine_folder(lake, source, stream, batch), QUARANTINE_FILE)
    if not lake.exists(path):
        return {}
    with lake.fs.open_input_file(path) as file:
        reasons = pq.read_table(file, columns=["_sluice_reason"]).column(0).to_pylist()
    counts: dict[str, int] = {}
    for reason in reasons:
        short = (reason or "unknown").split(":", 1)[0].strip()
        counts[short] = counts.get(short, 0) + 1
    return dict(sorted(counts.items()))


def volume_history(lake: Lake, tables: Iterable[str]) -> dict[str, dict[str, float]]:
    """Per table: batch -> its newest recorded ``row_count`` (volume), from ``ops/check_results``."""
    from sluice.checks.results import table_path

    wanted = sorted(set(tables))
    results = lake.delta_table(table_path(lake))
    if results is None or not wanted:
        return {}
    rows = results.to_pyarrow_table(
        columns=["checked_at", "batch", "table_name", "value"],
        filters=[("check", "=", "volume"), ("metric", "=", "row_count"), ("table_name", "in", wanted)],
    ).to_pylist()
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["table_name"], row["batch"])
        if key not in newest or row["checked_at"] > newest[key]["checked_at"]:
            newest[key] = row
    history: dict[str, dict[str, float]] = {}
    for (table, batch), row in newest.items():
        history.setdefault(table, {})[batch] = row["value"]
    return history


def z_score(value: float, batch: str, history: Mapping[str, float], volume: Volume) -> tuple[float | None, int]:
    """(z-score of ``value`` against the training batches, how many there were); None when
    fewer than ``min_training_batches``. Counts are whole numbers: a spread below one row
    is taken as one row, so an unchanging history still measures a change."""
    start = batch_start(batch)
    newest = start - volume.detection_period
    oldest = newest - volume.training_period
    training = [count for other, count in history.items() if oldest <= batch_start(other) < newest]
    if len(training) < volume.min_training_batches:
        return None, len(training)
    mean = statistics.fmean(training)
    spread = max(statistics.pstdev(training), 1.0)
    return (value - mean) / spread, len(training)


class StreamBatch(CheckRun):
    """The results of one stream's batch: one table, and figures judged against thresholds."""

    def __init__(self, *, source: str, table_name: str, dag_id: str, batch: str, now: datetime) -> None:
        super().__init__(checked_at=now, dag_id=dag_id, batch=batch, source=source, table_name=table_name)

    def judge(
        self, check: str, metric: str, value: float, threshold: Threshold, detail: str, describe: Any = None
    ) -> None:
        """A figure held to ``threshold``; ``detail`` gets the bounds appended (written by ``describe``)."""
        status, bound = threshold.judge(value)
        detail = f"{detail} ({threshold.bounds(describe)})"
        self.record(check, metric, value, detail, threshold=bound, status=status, blocking=threshold.blocking)


def _judge_volume(out: StreamBatch, rows: int, batch: str, volume: Volume | None, history: Mapping[str, float]) -> None:
    out.record("volume", "row_count", rows, f"{rows:,} rows in the batch")
    if volume is None:
        return
    z, trained = z_score(rows, batch, history, volume)
    if z is None:
        table = out.table_name
        log.info(
            "%s volume: %d earlier batch(es) in the training period, %d needed",
            table,
            trained,
            volume.min_training_batches,
        )
        return
    bound = Threshold(**{f"{volume.severity}_above": volume.anomaly_sensitivity}, blocking=volume.blocking)
    out.judge("volume", "z_score", abs(z), bound, f"{rows:,} rows, z = {z:+.2f} against {trained} earlier batches")


def _check_columns(source: Any, stream: Any, columns: Sequence[str], names: Iterable[str], table: str) -> None:
    """:raises CheckConfigError: a completeness threshold naming a column ``table`` does not have"""
    from sluice.core import config

    names = set(names)
    if unknown := [column for column in columns if column not in names]:
        raise CheckConfigError(
            f"{config.sources_dir() / (source.name + '.yml')}: stream {stream.name!r}: completeness names"
            f" column(s) {unknown} that {table} does not have; its columns: {', '.join(sorted(names))}"
        )


def _judge_nulls(out: StreamBatch, nulls: Mapping[str, int], rows: int, threshold: Threshold) -> None:
    for column, count in nulls.items():
        rate = count / rows if rows else 0.0
        detail = f"{column}: {count:,} of {rows:,} rows null ({rate:.2%})"
        out.judge("completeness", f"null_rate:{column}", rate, threshold, detail)


def _judge_duplicates(out: StreamBatch, figures: KeyFigures, stream: Any) -> None:
    duplicates = figures.keys - figures.distinct
    detail = f"{duplicates:,} row(s) repeat a record key ({stream.key_name}) of the batch"
    out.judge("uniqueness", "duplicate_keys", duplicates, stream.checks.uniqueness, detail)


def _judge_latency(
    out: StreamBatch, stream: Any, landed_at: datetime, batch: str, interval_end: datetime | None, compare: bool
) -> None:
    end = interval_end or batch_start(batch) + timedelta(hours=6)
    latency = (landed_at.astimezone(UTC) - end.astimezone(UTC)).total_seconds()
    detail = f"landed {describe_duration(latency)} after the interval's end"
    timeliness = stream.checks.timeliness
    if timeliness is not None and compare:
        out.judge("timeliness", "landing_latency_seconds", latency, timeliness, detail, describe_duration)
    else:
        why = "not compared: a rerun or backfill of a past interval" if timeliness else "recorded only"
        out.record("timeliness", "landing_latency_seconds", latency, f"{detail} ({why})")


def measure_stream(
    lake: Lake,
    source: Any,
    stream: Any,
    batch: str,
    *,
    connection: Any = None,
    interval_end: datetime | None = None,
    compare_timeliness: bool = True,
    history: Mapping[str, float] | None = None,
    now: datetime | None = None,
    dag_id: str = "",
) -> list[CheckResult]:
    """Every per-batch figure of ``stream`` (a :class:`~sluice.core.sources.StreamConfig` of
    ``source``) for ``batch``, judged against the stream's thresholds.

    :param connection: the warehouse (consistency); None: not compared
    :param interval_end: end of the batch's interval (timeliness); default start + 6 h
    :param compare_timeliness: False records the landing latency without judging it (a
        backfill or a manual run of a past interval lands long after the interval by design)
    :param history: batch -> row count of the stream's earlier batches (volume)
    :raises CheckConfigError: a threshold naming a column the bronze table does not have
    """
    from sluice.ingest.landing import manifest_path, read_manifest
    from sluice.lake.files import bronze_table
    from sluice.warehouse.tables import warehouse_table

    now = now or datetime.now(UTC)
    checks = stream.checks
    relation = f"bronze.{warehouse_table(source.name, stream.name)}"
    out = StreamBatch(source=source.name, table_name=relation, dag_id=dag_id, batch=batch, now=now)
    manifest = read_manifest(lake, source.name, stream.name, batch)
    table = bronze_table(lake, source.name, stream.name)
    actions = batch_actions(table, batch)
    rows = int(sum(actions.column("num_records").to_pylist())) if actions.num_rows else 0

    # the batch's size, quarantine and latency are recorded even when their check is off
    _judge_volume(out, rows, batch, checks.volume, history or {})
    out.record("volume", "bytes", manifest.get("bytes", 0), f"{manifest.get('bytes', 0):,} bytes landed")

    if checks.completeness is not None:
        columns = checks.completeness.columns
        names = (field.name for field in table.schema().fields)
        _check_columns(source, stream, columns, names, f"bronze/{source.name}/{stream.name}")
        _judge_nulls(out, null_counts(table, batch, columns, actions), rows, checks.completeness.threshold)

    key_figures = None
    if checks.uniqueness is not None or checks.consistency is not None:
        key_figures = lake_key_figures(table, batch, stream.record_key)
    if checks.uniqueness is not None and key_figures is not None:
        _judge_duplicates(out, key_figures, stream)

    read, quarantined = manifest.get("read", 0), manifest.get("quarantined", 0)
    out.record("validity", "quarantined", quarantined, f"{quarantined:,} records quarantined")
    for reason, count in quarantine_reasons(lake, source.name, stream.name, batch).items():
        out.record("validity", f"quarantined:{reason}", count, f"{count:,} quarantined: {reason}")
    if checks.validity is not None:
        rate = quarantined / read if read else 0.0
        detail = f"{quarantined:,} of {read:,} records quarantined ({rate:.2%})"
        out.judge("validity", "quarantined_rate", rate, checks.validity, detail)

    landed_at = lake.fs.get_file_info(manifest_path(lake, source.name, stream.name, batch)).mtime
    _judge_latency(out, stream, landed_at, batch, interval_end, compare_timeliness)

    if checks.consistency is not None and connection is not None and key_figures is not None:
        held = warehouse_key_figures(connection, relation, batch, stream.record_key)
        difference = abs(key_figures.rows - held.rows)
        detail = f"lake partition {key_figures.rows:,} rows, warehouse batch {held.rows:,}"
        out.judge("consistency", "row_count_difference", difference, checks.consistency, detail)
        mismatch = int(key_figures.checksum != held.checksum or key_figures.keys != held.keys)
        detail = "record keys " + ("differ" if mismatch else "match") + " between lake and warehouse"
        out.judge("consistency", "checksum_mismatch", mismatch, checks.consistency, detail)
    return out.results


def measure_warehouse_stream(
    connection: Any,
    source: Any,
    stream: Any,
    batch: str,
    *,
    interval_end: datetime | None = None,
    compare_timeliness: bool = True,
    history: Mapping[str, float] | None = None,
    now: datetime | None = None,
    dag_id: str = "",
) -> list[CheckResult]:
    """:func:`measure_stream` for a stream an Airbyte connection writes straight into
    Snowflake, measured there, on the batch's rows of the bronze view over Airbyte's table.

    Validity counts the records Airbyte's destination changed to load them (a field nulled
    or truncated; ``_airbyte_meta.changes``), per reason, instead of quarantined ones;
    timeliness takes the newest ``_airbyte_extracted_at`` of the batch as its landing.
    Consistency is the landing's own check: it compares the job's records with the tables.
    """
    from sluice.lake.files import BATCH_COLUMN
    from sluice.warehouse.tables import warehouse_table
    from sluice.warehouse.target import current

    quote = current().quote

    now = now or datetime.now(UTC)
    checks = stream.checks
    relation = f"bronze.{warehouse_table(source.name, stream.name)}"
    out = StreamBatch(source=source.name, table_name=relation, dag_id=dag_id, batch=batch, now=now)
    figures = warehouse_key_figures(connection, relation, batch, stream.record_key)
    _judge_volume(out, figures.rows, batch, checks.volume, history or {})
    if checks.uniqueness is not None:
        _judge_duplicates(out, figures, stream)

    batch_start(batch)  # a well-formed batch id, safe to write into the statements
    rows = f"{relation} WHERE {quote(BATCH_COLUMN)} = '{batch}'"
    meta = quote("_airbyte_meta")
    cursor = connection.cursor()
    try:
        if checks.completeness is not None:
            columns = checks.completeness.columns
            cursor.execute(f"SELECT * FROM {relation} WHERE 1 = 0")
            _check_columns(source, stream, columns, (d[0].lower() for d in cursor.description), relation)
            counts = ", ".join(f"count(*) - count({quote(column)})" for column in columns)
            cursor.execute(f"SELECT {counts} FROM {rows}")
            nulls = dict(zip(columns, (int(n or 0) for n in cursor.fetchone()), strict=True))
            _judge_nulls(out, nulls, figures.rows, checks.completeness.threshold)

        cursor.execute(f"SELECT count_if(array_size({meta}:changes) > 0) FROM {rows}")
        changed = int(cursor.fetchone()[0] or 0)
        out.record("validity", "changed", changed, f"{changed:,} records changed by the destination to load")
        cursor.execute(
            f"SELECT change.value:reason::varchar, count(*) FROM (SELECT {meta} AS m FROM {rows}) AS b,"
            " lateral flatten(input => b.m:changes) AS change GROUP BY 1 ORDER BY 1"
        )
        for reason, count in cursor.fetchall():
            out.record("validity", f"changed:{reason}", int(count), f"{int(count):,} changed: {reason}")
        if checks.validity is not None:
            rate = changed / figures.rows if figures.rows else 0.0
            detail = f"{changed:,} of {figures.rows:,} records changed by the destination ({rate:.2%})"
            out.judge("validity", "changed_rate", rate, checks.validity, detail)

        cursor.execute(f"SELECT max({quote('_airbyte_extracted_at')}) FROM {rows}")
        newest = cursor.fetchone()[0]
    finally:
        cursor.close()
    if newest is not None:
        _judge_latency(out, stream, newest, batch, interval_end, compare_timeliness)
    return out.results


def measure_batch(
    lake: Lake,
    source: Any,
    batch: str,
    *,
    connection: Any = None,
    interval_end: datetime | None = None,
    compare_timeliness: bool = True,
    now: datetime | None = None,
    dag_id: str = "",
    streams: Iterable[str] | None = None,
) -> list[CheckResult]:
    """:func:`measure_stream` for every stream of ``source`` (or ``streams``), or
    :func:`measure_warehouse_stream` for a source an Airbyte connection writes into the
    warehouse (``connection``, then required); the volume history is read once for all."""
    from sluice.warehouse.tables import warehouse_table

    chosen = [source.stream(name) for name in streams] if streams is not None else list(source.streams)
    relations = {stream.name: f"bronze.{warehouse_table(source.name, stream.name)}" for stream in chosen}
    history = volume_history(lake, relations.values()) if any(s.checks.volume for s in chosen) else {}
    if source.writes_warehouse and connection is None:
        raise ValueError(f"source {source.name} is measured in the warehouse: a warehouse connection is needed")
    results: list[CheckResult] = []
    for stream in chosen:
        common = {
            "interval_end": interval_end,
            "compare_timeliness": compare_timeliness,
            "history": history.get(relations[stream.name], {}),
            "now": now,
            "dag_id": dag_id,
        }
        if source.writes_warehouse:
            results += measure_warehouse_stream(connection, source, stream, batch, **common)
        else:
            results += measure_stream(lake, source, stream, batch, connection=connection, **common)
    return results
