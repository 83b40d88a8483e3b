"""Per-batch data-integrity metrics: each figure on a real batch, thresholds from the source
declaration, results in the lake and the warehouse, one alert per breach, StatsD figures,
and a blocking breach holding a real ingestion DAG's publish (its Asset).
"""

from __future__ import annotations

import json
import os
import stat
import textwrap
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from watch_batch import FAKER_BATCH, FAKER_COUNT, StatsdReceiver, airflow_environment, copy_faker_batch, run_dag

from environment import VENV2_BIN
from sluice.checks import results as results_table
from sluice.checks.metrics import lake_key_figures, measure_batch, measure_stream, warehouse_key_figures, z_score
from sluice.checks.report import report
from sluice.checks.results import CheckResult
from sluice.checks.warehouse import write_batch_metrics
from sluice.core.sources import SourceConfig, SourceConfigError, StreamConfig, load_source
from sluice.core.thresholds import CheckConfigError, Volume, parse_checks
from sluice.ingest.commit import commit_batch
from sluice.ingest.landing import BatchLanding
from sluice.ingest.schema import stream_schema
from sluice.warehouse.duckdb_load import load_batch

B1 = "20261120T000000Z"
SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "email": {"type": "string"}, "amount": {"type": "number"}},
}
CHECKS = {
    "completeness": {"columns": ["email"], "error_above": 0.05},
    "uniqueness": {"error_above": 0, "blocking": True},
    "validity": {"warn_above": 0, "error_above": 0.5},
}


def demo(checks: dict | None = None) -> SourceConfig:
    stream = StreamConfig("orders", record_key="id", checks=parse_checks(checks or CHECKS, "demo"))
    return SourceConfig("demo", "source-demo", "", "data-platform", (stream,))


def land(lake, source: SourceConfig, batch: str, records: list) -> None:
    """Land and commit ``records`` (Airbyte record data) as the batch of the demo orders stream."""
    stream = source.streams[0]
    landing = BatchLanding(lake, source.name, batch, {"orders": (stream, stream_schema(SCHEMA))})
    landing.add_all({"stream": "orders", "data": data, "emitted_at": 1_800_000_000_000} for data in records)
    landing.publish(state=[])
    commit_batch(source.name, stream, batch, lake)


def orders(ids, emails=None) -> list[dict]:
    return [{"id": i, "email": (emails or {}).get(i, f"{i}@x.io"), "amount": 10.0} for i in ids]


#: 20 orders, 2 without email, id 5 three times, and 3 records that go to quarantine
CRAFTED = [
    *orders(range(1, 21), {1: None, 2: None}),
    *orders([5, 5]),
    {"email": "nokey@x.io", "amount": 1.0},
    {"id": 99, "email": "bad@x.io", "amount": "not a number"},
    "not an object",
]


def by_metric(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {f"{r.check}/{r.metric}": r for r in results}


# -- thresholds in the source declaration


def test_thresholds_take_the_platform_defaults_and_can_be_turned_off():
    checks = parse_checks({"volume": False, "uniqueness": {"error_above": 2, "blocking": True}}, "demo")
    assert checks.volume is None and checks.completeness is None
    assert (checks.uniqueness.error_above, checks.uniqueness.warn_above, checks.uniqueness.blocking) == (2, None, True)
    assert checks.consistency.error_above == 0 and checks.consistency.blocking  # default: blocking
    assert checks.timeliness.warn_above == 3 * 3600 and checks.timeliness.error_above == 6 * 3600
    users = load_source("faker").stream("users").checks
    assert users.completeness.columns == ("email", "created_at", "updated_at") and users.uniqueness.blocking


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        ("{freshnes: {warn_above: 1}}", "unknown check(s) ['freshnes']; a stream declares completeness"),
        ("{completeness: {error_above: 0.1}}", "check 'completeness' names no column"),
        ("{completeness: {columns: []}}", "check 'completeness' names no column"),
        (
            "{timeliness: {warn_after: {count: x, period: fortnight}}}",
            "warn_after must be {count: <whole number above 0>, period: minute|hour|day}, not {'count': 'x'",
        ),
        ("{uniqueness: {warn_above: 5, error_above: 1}}", "warn_above 5 is above error_above 1"),
        ("{validity: {error_above: 5}}", "error_above is a share of the batch's rows, 0 to 1"),
        ("{uniqueness: {error_above: none}}", "error_above must be a number of at least 0, not 'none'"),
        ("{consistency: {blocking: yes please}}", "blocking must be true or false"),
        ("{volume: {sensitivity: 3}}", "check 'volume' has unknown key(s) ['sensitivity']"),
        ("{volume: {severity: fatal}}", "severity must be one of warn, error"),
        ("[uniqueness]", "checks must map check names"),
    ],
)
def test_a_malformed_threshold_fails_when_the_source_is_loaded(tmp_path, checks, message):
    (tmp_path / "shop.yml").write_text(
        f"connector: source-shop\nstreams:\n  orders:\n    record_key: id\n    checks: {checks}\n"
    )
    with pytest.raises(SourceConfigError) as raised:
        load_source("shop", tmp_path)
    assert "shop.yml: stream 'orders'" in str(raised.value) and message in str(raised.value)


def test_a_threshold_naming_an_unknown_column_fails_the_check(local_lake):
    source = demo({"completeness": {"columns": ["emial", "email"]}})
    land(local_lake, source, B1, orders([1, 2]))
    with pytest.raises(
        CheckConfigError, match=r"demo.yml: stream 'orders': completeness names column\(s\) \['emial'\]"
    ):
        measure_stream(local_lake, source, source.streams[0], B1)


# -- the figures


def test_every_figure_of_a_real_faker_batch(tmp_path):
    lake, warehouse = copy_faker_batch(tmp_path)
    con = duckdb.connect(str(warehouse))
    results = measure_batch(lake, load_source("faker"), FAKER_BATCH, connection=con, dag_id="ingest_faker")
    con.close()
    tables = {r.table_name for r in results}
    assert tables == {"bronze.faker__users", "bronze.faker__products", "bronze.faker__purchases"}
    users = by_metric([r for r in results if r.table_name == "bronze.faker__users"])
    assert users["volume/row_count"].value == FAKER_COUNT and users["volume/bytes"].value > 1000
    for column in ("email", "created_at", "updated_at"):
        assert (users[f"completeness/null_rate:{column}"].value, users[f"completeness/null_rate:{column}"].status) == (
            0,
            "pass",
        )
    assert users["uniqueness/duplicate_keys"].value == 0 and users["uniqueness/duplicate_keys"].blocking
    assert users["validity/quarantined_rate"].value == 0 and users["validity/quarantined"].value == 0
    assert users["consistency/row_count_difference"].value == 0 and users["consistency/checksum_mismatch"].value == 0
    # landed days after its interval (2026-11-30 06:00): an error when a scheduled run lands that late
    assert users["timeliness/landing_latency_seconds"].value > 86400
    assert users["timeliness/landing_latency_seconds"].status == "error"
    assert "volume/z_score" not in users  # no history yet
    assert {r.status for r in results if r.check != "timeliness"} == {"pass"}


def test_breaches_of_a_crafted_batch_and_lake_warehouse_consistency(local_lake, tmp_path):
    source = demo()
    land(local_lake, source, B1, CRAFTED)
    warehouse = tmp_path / "wh.duckdb"
    load_batch("demo", "orders", B1, local_lake, warehouse)
    con = duckdb.connect(str(warehouse))

    def measure() -> dict[str, CheckResult]:
        return by_metric(
            measure_stream(local_lake, source, source.streams[0], B1, connection=con, compare_timeliness=False)
        )

    figures = measure()
    assert figures["volume/row_count"].value == 22
    email = figures["completeness/null_rate:email"]
    assert (email.value, email.status, email.threshold) == (pytest.approx(2 / 22), "error", 0.05)
    assert email.detail == "email: 2 of 22 rows null (9.09%) (error above 0.05)"
    duplicates = figures["uniqueness/duplicate_keys"]
    assert (duplicates.value, duplicates.status, duplicates.blocking) == (2, "error", True)
    validity = figures["validity/quarantined_rate"]
    assert (validity.value, validity.status) == (pytest.approx(3 / 25), "warn")
    reasons = {k.split(":", 1)[1]: r.value for k, r in figures.items() if k.startswith("validity/quarantined:")}
    assert reasons == {
        "does not fit the stream schema": 1,
        "record data is not a JSON object": 1,
        "record key 'id' is missing": 1,
    }
    assert figures["timeliness/landing_latency_seconds"].status == "pass"  # recorded only
    assert figures["consistency/row_count_difference"].value == 0
    assert figures["consistency/checksum_mismatch"].value == 0

    con.execute("DELETE FROM bronze.demo__orders WHERE id = 3")
    figures = measure()
    assert (figures["consistency/row_count_difference"].value, figures["consistency/row_count_difference"].status) == (
        1,
        "error",
    )
    assert figures["consistency/checksum_mismatch"].value == 1 and figures["consistency/checksum_mismatch"].blocking
    # the same count, another key: only the checksum tells
    load_batch("demo", "orders", B1, local_lake, warehouse)
    con.execute("UPDATE bronze.demo__orders SET id = 333 WHERE id = 3")
    figures = measure()
    assert (
        figures["consistency/row_count_difference"].value == 0 and figures["consistency/checksum_mismatch"].value == 1
    )
    con.close()


def test_the_checksum_is_the_same_in_the_lake_and_on_snowflake(local_lake, snowflake, monkeypatch):
    monkeypatch.setenv("SLUICE_WAREHOUSE", "snowflake")
    from sluice.lake.files import bronze_table
    from sluice.warehouse.snowflake_load import load_batch as load_into_snowflake

    source = demo()
    # enough keys that their checksum is past 2^53, where a floating-point sum would round
    land(local_lake, source, B1, orders(range(1, 2001)))
    load_into_snowflake("demo", "orders", B1, snowflake, local_lake)
    lake = lake_key_figures(bronze_table(local_lake, "demo", "orders"), B1, "id")
    assert (lake.rows, lake.distinct) == (2000, 2000) and lake.checksum > 2**53
    assert warehouse_key_figures(snowflake, "bronze.demo__orders", B1, "id") == lake
    snowflake.cursor().execute("DELETE FROM bronze.demo__orders WHERE id = 7")
    held = warehouse_key_figures(snowflake, "bronze.demo__orders", B1, "id")
    assert held.rows == 1999 and held.checksum != lake.checksum

    # the same rows go to ops.batch_metrics on Snowflake
    results = measure_stream(local_lake, source, source.streams[0], B1, connection=snowflake, dag_id="ingest_demo")
    assert write_batch_metrics(snowflake, results) == len(results)
    write_batch_metrics(snowflake, results)  # a rerun replaces its rows
    cursor = snowflake.cursor()
    cursor.execute(
        'SELECT "CHECK", metric, value, status FROM ops.batch_metrics WHERE "CHECK" = \'consistency\' ORDER BY 2'
    )
    assert cursor.fetchall() == [
        ("consistency", "checksum_mismatch", 1.0, "error"),
        ("consistency", "row_count_difference", 1.0, "error"),
    ]
    cursor.execute("SELECT count(*) FROM ops.batch_metrics")
    assert cursor.fetchone()[0] == len(results)


def test_a_source_airbyte_writes_into_snowflake_is_measured_there(local_lake, snowflake, monkeypatch):
    """The bronze view over Airbyte's table, as :mod:`sluice.ingest.airbyte.warehouse` keeps it."""
    monkeypatch.setenv("SLUICE_WAREHOUSE", "snowflake")
    from sluice.core.sources import AirbyteConnection

    stream = StreamConfig("orders", record_key="id", checks=parse_checks(CHECKS, "demo"))
    source = SourceConfig(
        "demo",
        "",
        "",
        "data-platform",
        (stream,),
        driver="airbyte",
        airbyte=AirbyteConnection("c1", destination="warehouse"),
    )
    cursor = snowflake.cursor()
    cursor.execute(
        "CREATE TABLE bronze.demo__orders (id INTEGER, email VARCHAR, _sluice_batch VARCHAR,"
        " _airbyte_extracted_at TIMESTAMP_TZ, _airbyte_meta VARIANT)"
    )
    nulled = {"field": "email", "change": "NULLED", "reason": "DESTINATION_SERIALIZATION_ERROR"}
    rows = [(i, None if i in (1, 2) else f"{i}@x.io", [nulled] if i == 2 else []) for i in [*range(1, 21), 5, 5]]
    extracted = "2026-11-20 06:30:00+00:00"  # half an hour after the interval's end
    for key, email, changes in [*rows, (99, "other@x.io", [])]:
        batch = B1 if key != 99 else "20261120T060000Z"
        meta = json.dumps({"sync_id": 7, "changes": changes})
        cursor.execute(
            "INSERT INTO bronze.demo__orders SELECT %s, %s, %s, %s::TIMESTAMP_TZ, PARSE_JSON(%s)",
            (key, email, batch, extracted, meta),
        )

    figures = by_metric(measure_batch(local_lake, source, B1, connection=snowflake, dag_id="ingest_demo"))
    assert figures["volume/row_count"].value == 22  # the other batch's row is not counted
    email = figures["completeness/null_rate:email"]
    assert (email.value, email.status) == (pytest.approx(2 / 22), "error")
    duplicates = figures["uniqueness/duplicate_keys"]
    assert (duplicates.value, duplicates.status, duplicates.blocking) == (2, "error", True)
    changed = figures["validity/changed_rate"]
    assert (changed.value, changed.status) == (pytest.approx(1 / 22), "warn")
    assert figures["validity/changed:DESTINATION_SERIALIZATION_ERROR"].value == 1
    latency = figures["timeliness/landing_latency_seconds"]
    assert (latency.value, latency.status) == (1800, "pass")
    assert not [key for key in figures if key.startswith("consistency/")]
    assert write_batch_metrics(snowflake, list(figures.values())) == len(figures)

    with pytest.raises(CheckConfigError, match=r"completeness names column\(s\) \['phone'\] that bronze.demo__orders"):
        checks = parse_checks({"completeness": {"columns": ["phone"]}}, "demo")
        measure_batch(local_lake, replace(source, streams=(replace(stream, checks=checks),)), B1, connection=snowflake)
    with pytest.raises(ValueError, match="source demo is measured in the warehouse"):
        measure_batch(local_lake, source, B1)


def test_volume_is_a_z_score_over_the_training_period(local_lake):
    start = datetime(2026, 11, 20, tzinfo=UTC)
    volume = Volume(training_period=timedelta(days=3), detection_period=timedelta(hours=6), min_training_batches=8)
    batch = lambda hours: (start - timedelta(hours=hours)).strftime("%Y%m%dT%H%M%SZ")  # noqa: E731
    # 12 batches in the training period, 6 h to 3 d 6 h before the batch; one in the detection
    # period and one older than the training period, both left out
    history = {batch(6 * k): 1000 + (k % 3 - 1) * 10 for k in range(2, 14)}
    history[batch(6)] = 5
    history[batch(6 * 14)] = 1_000_000
    z, trained = z_score(1000, B1, history, volume)
    assert trained == 12 and z == pytest.approx(0.0, abs=0.2)
    z, _ = z_score(22, B1, history, volume)
    assert z < -100
    assert z_score(22, B1, dict(list(history.items())[:5]), volume) == (None, 5)
    assert z_score(1000, B1, {batch(6 * k): 1000 for k in range(2, 14)}, volume)[0] == 0  # no spread: one row

    # from ops/check_results: the earlier batches' row counts, newest per batch
    source = demo(
        {
            "volume": {
                "training_period": {"count": 3, "period": "day"},
                "detection_period": {"count": 6, "period": "hour"},
                "severity": "error",
                "blocking": True,
            }
        }
    )
    common = {"dag_id": "ingest_demo", "source": "demo", "table_name": "bronze.demo__orders", "check": "volume"}
    rows = [
        CheckResult(
            checked_at=start,
            batch=b,
            metric="row_count",
            value=float(v),
            threshold=None,
            status="pass",
            blocking=False,
            detail="",
            **common,
        )
        for b, v in history.items()
    ]
    results_table.record(local_lake, rows)
    land(local_lake, source, B1, orders(range(1, 23)))
    figures = by_metric(measure_batch(local_lake, source, B1))
    anomaly = figures["volume/z_score"]
    assert (anomaly.status, anomaly.blocking, anomaly.threshold) == ("error", True, 3.0)
    assert "22 rows, z = -" in anomaly.detail and "against 12 earlier batches" in anomaly.detail


# -- recorded, sent, alerted


def test_a_breach_repeated_three_times_alerts_once_and_its_recovery_resolves(slack, local_lake, tmp_path):
    source = demo({"uniqueness": {"error_above": 0}, "validity": False, "timeliness": False, "volume": False})
    warehouse = tmp_path / "wh.duckdb"
    batches = ["20261120T000000Z", "20261120T060000Z", "20261120T120000Z", "20261120T180000Z"]
    outcomes = []
    for i, batch in enumerate(batches):
        land(local_lake, source, batch, orders([1, 2, 3] if i == 3 else [1, 1, 2]))
        load_batch("demo", "orders", batch, local_lake, warehouse)
        con = duckdb.connect(str(warehouse))
        results = measure_batch(local_lake, source, batch, connection=con, dag_id="ingest_demo")
        outcomes.append(report(results, lake=local_lake, connection=con))
        con.close()
    assert [o.alerted for o in outcomes] == [["uniqueness/bronze.demo__orders"]] * 3 + [[]]
    assert "uniqueness/bronze.demo__orders" in outcomes[3].resolved
    assert len(slack.received) == 2, slack.texts()
    alert_text, resolved_text = slack.texts()
    assert "Uniqueness threshold breached: bronze.demo__orders" in alert_text
    assert "1 row(s) repeat a record key (id) of the batch (error above 0)" in alert_text
    assert (
        "Resolved: Uniqueness threshold breached: bronze.demo__orders" in resolved_text
        and "seen 3 times" in resolved_text
    )

    lake_rows = results_table.latest(local_lake)
    assert {(r.check, r.metric) for r in lake_rows} >= {
        ("uniqueness", "duplicate_keys"),
        ("consistency", "checksum_mismatch"),
    }
    con = duckdb.connect(str(warehouse), read_only=True)
    query = 'SELECT batch, "check", metric, value, status FROM ops.batch_metrics WHERE "check" = ? ORDER BY batch'
    rows = con.execute(query, ["uniqueness"]).fetchall()
    con.close()
    assert rows == [
        (b, "uniqueness", "duplicate_keys", 0.0 if i == 3 else 1.0, "pass" if i == 3 else "error")
        for i, b in enumerate(batches)
    ]


def test_statsd_names_of_the_figures():
    from sluice.checks.stats import figures

    now = datetime(2026, 11, 20, tzinfo=UTC)
    common = {"checked_at": now, "dag_id": "d", "batch": B1, "source": "faker", "threshold": None, "blocking": False}

    def result(table, check, metric, value, status):
        return CheckResult(
            table_name=table, check=check, metric=metric, value=value, status=status, detail="", **common
        )

    results = [
        result("bronze.faker__users", "volume", "row_count", 100, "pass"),
        result("bronze.faker__users", "uniqueness", "duplicate_keys", 2, "error"),
        result("lake:bronze/faker/users", "freshness", "lag_seconds", 60, "pass"),
        result("bronze.faker__users", "validity", "changed", 3, "pass"),
    ]
    assert figures(results) == [
        ("gauge", "sluice.rows_landed.faker.users", 100),
        ("incr", "sluice.breaches.uniqueness.error", 1),
        ("gauge", "sluice.freshness_lag_seconds.lake.bronze.faker.users", 60),
        ("gauge", "sluice.rows_changed.faker.users", 3),
    ]


# -- a real ingestion DAG


CONNECTOR = """#!/bin/sh
if [ "$1" = discover ]; then
  echo '{"type": "CATALOG", "catalog": {"streams": [{"name": "orders", "json_schema": %(schema)s,
    "supported_sync_modes": ["full_refresh"]}]}}' | tr -d '\\n'; echo; exit 0
fi
if [ -e "${FLAG}1" ]; then ids="1 2 3"; else ids="1 1 2"; fi
for id in $ids; do
  printf '{"type": "RECORD", "record": {"stream": "orders", "data": {"id": %%s}, "emitted_at": 1}}\\n' $id
done
"""


@pytest.fixture(params=["airflow3", "airflow2"])
def airflow(request, tmp_path):
    if request.param == "airflow3":
        request.getfixturevalue("airflow_db")
    elif not (VENV2_BIN / "python").exists():
        pytest.fail(f"{VENV2_BIN / 'python'} missing: run `make test`, which installs both Airflow versions")
    return request.param, *airflow_environment(request.param, tmp_path / "airflow2", tmp_path / "data2")


def test_a_blocking_breach_holds_the_publish_and_the_figures_reach_statsd(airflow, slack, tmp_path):
    """The real ingestion DAG of a source whose connector repeats a key in the first batch."""
    version, python, env = airflow
    (tmp_path / "include" / "sources").mkdir(parents=True)
    (tmp_path / "include" / "sources" / "demo.yml").write_text(
        "connector: source-demo\nstreams:\n  orders:\n    record_key: id\n"
        "    checks: {uniqueness: {error_above: 0, blocking: true}}\n"
    )
    connector = tmp_path / "connectors" / "source-demo" / "bin" / "source-demo"
    connector.parent.mkdir(parents=True)
    connector.write_text(CONNECTOR % {"schema": json.dumps(SCHEMA)})
    connector.chmod(connector.stat().st_mode | stat.S_IEXEC)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "demo.py").write_text(
        textwrap.dedent('''
        """Airflow DAG: ingest demo."""
        from sluice.dag_builder import ingestion_dag

        dag = ingestion_dag("demo")
        ''')
    )
    statsd = StatsdReceiver()
    env = {
        **env,
        **statsd.environment(),
        "AIRFLOW_CONN_SLACK_ALERTS": os.environ["AIRFLOW_CONN_SLACK_ALERTS"],
        "SLUICE_INCLUDE_DIR": str(tmp_path / "include"),
        "SLUICE_CONNECTORS_DIR": str(tmp_path / "connectors"),
        "SLUICE_LAKE_ROOT": str(tmp_path / "lake"),
        "SLUICE_WAREHOUSE_PATH": str(tmp_path / "wh.duckdb"),
        "SLUICE_RETRY_DELAY_SECONDS": "0",
        "FLAG": str(tmp_path / "flag"),
    }
    starts = [datetime(2026, 11, 20, 6), datetime(2026, 11, 20, 12)]
    try:
        runs, output = run_dag(python, env, dags, "ingest_demo", starts, tmp_path)
    finally:
        statsd.stop()
    bad, good = runs
    assert bad.state == "failed" and good.state == "success", output[-4000:]
    assert (bad.tasks["orders.load"], bad.tasks["metrics"]) == ("success", "failed")
    assert good.tasks["metrics"] == "success"
    # one alert for the breach (not a second one for the failed task), one when it passed
    assert len(slack.received) == 2, slack.texts()
    assert "Uniqueness threshold breached: bronze.demo__orders" in slack.texts()[0]
    assert "Resolved: Uniqueness" in slack.texts()[1]
    assert "blocking threshold breached, so sluice.bronze.demo is not published" in output

    figures = statsd.values("airflow.sluice.")
    assert figures["airflow.sluice.rows_landed.demo.orders"] == "3|g"
    assert figures["airflow.sluice.rows_quarantined.demo.orders"] == "0|g"
    assert figures["airflow.sluice.bytes_landed.demo.orders"].endswith("|g")
    assert float(figures["airflow.sluice.landing_latency_seconds.demo.orders"].split("|")[0]) > 0
    assert figures["airflow.sluice.breaches.uniqueness.error"] == "1|c"
    breaches = [line for line in statsd.lines if line.startswith("airflow.sluice.breaches.")]
    assert breaches == ["airflow.sluice.breaches.uniqueness.error:1|c"]

    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT dag_id, \"check\", value, status FROM ops.batch_metrics WHERE metric = 'duplicate_keys' ORDER BY batch"
    ).fetchall()
    con.close()
    assert rows == [("ingest_demo", "uniqueness", 1.0, "error"), ("ingest_demo", "uniqueness", 0.0, "pass")]
