"""The cluster policy's rules, the batch id and source declarations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from airflow.providers.common.compat.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

from sluice.alerting.callbacks import on_task_failure
from sluice.core.batch import batch_id, batch_start, parse_utc
from sluice.core.sources import SourceConfigError, load_source
from sluice.policy import dag_violations


def test_a_bare_dag_breaks_every_convention():
    with DAG("bare", schedule="@daily", start_date=datetime(2026, 1, 1), catchup=True, max_active_runs=16) as dag:
        EmptyOperator(task_id="t")
    problems = "; ".join(dag_violations(dag))
    for rule in (
        "no doc_md",
        "no tags",
        "catchup=True",
        "max_active_runs=16",
        "no owner",
        "retries=0",
        "exponential backoff",
        "no on_failure_callback",
        "no late-run alert",
    ):
        assert rule in problems


def test_a_conforming_dag_passes():
    args = {
        "owner": "data-platform",
        "retries": 2,
        "retry_exponential_backoff": True,
        "retry_delay": timedelta(seconds=5),
        "on_failure_callback": on_task_failure,
    }
    with DAG(
        "good",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        doc_md="does things",
        tags=["x"],
        default_args=args,
    ) as dag:
        EmptyOperator(task_id="t")
    assert dag_violations(dag) == []


def test_batch_ids_round_trip_and_sort_in_time_order():
    start = datetime(2026, 11, 20, 6, tzinfo=UTC)
    assert batch_id(start) == "20261120T060000Z"
    assert batch_start("20261120T060000Z") == start
    assert batch_id(start) < batch_id(start + timedelta(hours=6))
    with pytest.raises(ValueError):
        batch_id(datetime(2026, 11, 20))
    assert parse_utc("2026-11-20T06:00") == parse_utc("2026-11-20T08:00+02:00") == start


def test_faker_declaration_names_keys(tmp_path):
    faker = load_source("faker")
    assert faker.connector == "source-faker"
    assert faker.stream("users").subject_key == "email"
    (tmp_path / "broken.yml").write_text("connector: x\nstreams:\n  s: {}\n")
    with pytest.raises(SourceConfigError, match="stream 's' has no record_key"):
        load_source("broken", tmp_path)
    with pytest.raises(SourceConfigError, match="no source declaration"):
        load_source("missing", tmp_path)


def test_a_declaration_chooses_its_driver(tmp_path):
    assert load_source("faker").driver == "local"
    (tmp_path / "shop.yml").write_text(
        "driver: airbyte\nairbyte:\n  connection_id: 9f3c\n  destination: warehouse\n"
        "streams:\n  orders: {record_key: id}\n"
    )
    shop = load_source("shop", tmp_path)
    assert (shop.driver, shop.airbyte.connection_id, shop.airbyte.conn_id) == ("airbyte", "9f3c", "airbyte_default")
    assert (shop.airbyte.destination, shop.airbyte.poll_seconds) == ("warehouse", 30)
    bad = {
        "driver: ftp\nstreams:\n  s: {record_key: id}\n": "driver 'ftp' is not one of",
        "driver: airbyte\nstreams:\n  s: {record_key: id}\n": r"missing required keys \['airbyte'\]",
        "driver: airbyte\nairbyte: {conn_id: x}\nstreams:\n  s: {record_key: id}\n": "airbyte needs connection_id",
        "driver: airbyte\nairbyte: {connection_id: c, destination: s3}\nstreams:\n  s: {record_key: id}\n": (
            "destination 's3' is not one of"
        ),
        "driver: airbyte\nairbyte: {connection_id: c, conection: x}\nstreams:\n  s: {record_key: id}\n": (
            r"unknown keys \['conection'\]"
        ),
        "streams:\n  s: {record_key: id}\n": r"missing required keys \['connector'\]",
        "driver: airbyte\nairbyte: {connection_id: c, poll_seconds: soon}\nstreams:\n  s: {record_key: id}\n": (
            "airbyte poll_seconds must be a positive number of seconds, not 'soon'"
        ),
    }
    for text, message in bad.items():
        (tmp_path / "bad.yml").write_text(text)
        with pytest.raises(SourceConfigError, match=message):
            load_source("bad", tmp_path)


def test_a_misspelt_key_is_named_with_the_key_it_likely_means(tmp_path):
    (tmp_path / "shop.yml").write_text("connector: source-shop\nstreams:\n  orders: {record_kye: id}\n")
    with pytest.raises(SourceConfigError) as raised:
        load_source("shop", tmp_path)
    message = str(raised.value)
    assert (
        message
        == f"{tmp_path / 'shop.yml'}: stream 'orders' has unknown keys ['record_kye'] (did you mean 'record_key'?)"
    )
    assert "has no record_key" not in message  # the key is there, misspelt, not missing
    (tmp_path / "shop.yml").write_text(
        "conector: source-shop\nowner: data-platform\nstreams:\n  orders: {record_key: id, cursor: updated_at}\n"
        "  refunds: {record_key: id, subjectkey: email, pii: [email], colour: red}\n"
    )
    with pytest.raises(SourceConfigError) as raised:
        load_source("shop", tmp_path)
    path = tmp_path / "shop.yml"
    assert str(raised.value).split("; ") == [
        f"{path} has unknown keys ['conector'] (did you mean 'connector'?)",
        f"{path}: stream 'orders' has unknown keys ['cursor'] (did you mean 'cursor_field'?)",
        f"{path}: stream 'refunds' has unknown keys ['subjectkey', 'colour']"
        " (did you mean 'subject_key' for 'subjectkey'?)",
    ]


def test_a_key_with_no_likely_meaning_lists_the_known_keys(tmp_path):
    (tmp_path / "shop.yml").write_text(
        "driver: airbyte\nairbyte: {connection_id: c, schedule: hourly}\nstreams:\n  orders: {record_key: id}\n"
    )
    with pytest.raises(
        SourceConfigError, match=r"airbyte has unknown keys \['schedule'\] \(known keys: connection_id, co"
    ):
        load_source("shop", tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("streams:\n  orders: {record_key: 7}\n", "stream 'orders': record_key input should be a valid string, not 7"),
        ("streams:\n  orders: id\n", "stream 'orders' must map its keys to their values, e.g. {record_key: id}"),
        ("streams: [orders]\n", "streams must map stream names to their keys"),
        ("meta: ops\nstreams:\n  orders: {record_key: id}\n", "meta must be a mapping"),
        ("description: [a, b]\nstreams:\n  orders: {record_key: id}\n", "description input should be a valid string"),
        ("streams:\n  orders:\n", "stream 'orders' has no record_key"),
        (
            "streams:\n  orders: {record_key: id, subject_key: email, identifiers: {email: ''}}\n",
            "stream 'orders': identifiers maps columns to identifier types",
        ),
    ],
)
def test_a_value_of_the_wrong_shape_is_named_with_its_stream_and_key(tmp_path, text, message):
    (tmp_path / "shop.yml").write_text("connector: source-shop\n" + text)
    with pytest.raises(SourceConfigError) as raised:
        load_source("shop", tmp_path)
    assert str(raised.value).startswith(str(tmp_path / "shop.yml")) and message in str(raised.value)


def test_a_numeric_airbyte_connection_id_is_read_as_text(tmp_path):
    (tmp_path / "shop.yml").write_text(
        "driver: airbyte\nairbyte: {connection_id: 42, poll_seconds: 5}\nstreams:\n  orders: {record_key: id}\n"
    )
    shop = load_source("shop", tmp_path)
    assert (shop.airbyte.connection_id, shop.airbyte.poll_seconds, shop.owner) == ("42", 5.0, "data-platform")
