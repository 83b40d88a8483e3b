"""GDPR erasure on the embedded stack: batches ingested and transformed, three people
erased by different identifiers through the ``gdpr_erasure`` DAG, then proven gone."""

from __future__ import annotations

import json
import subprocess
from collections import Counter

import duckdb
import pytest

from e2e.snapshot import warehouse_snapshot
from e2e.test_slice import run_batch, run_ok
from environment import VENV_BIN, isolated_environment

pytestmark = pytest.mark.e2e
BATCHES = ("2026-11-10T00:00", "2026-11-10T06:00")
LAYERS = ("bronze", "silver", "gold", "marts")


def erase(env, conf, logical_date):
    command = [VENV_BIN / "airflow", "dags", "test", "gdpr_erasure", logical_date, "-c", json.dumps(conf)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def people_rows(warehouse, ids, emails):
    """Rows of the people in every base table of the four layers, by any identifier column."""
    con = duckdb.connect(str(warehouse), read_only=True)
    found = {}
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_type = 'BASE TABLE' and table_schema in ('bronze', 'silver', 'gold', 'marts')"
        ).fetchall()
        for schema, table in tables:
            columns = {row[0] for row in con.execute(f'describe "{schema}"."{table}"').fetchall()}
            terms = [
                f"cast({c} as varchar) in ({', '.join(repr(str(i)) for i in ids)})"
                for c in columns & {"id", "user_id", "customer_id"}
                if not (table.endswith("products") and c == "id")
            ]
            terms += (
                [f"lower(trim(email)) in ({', '.join(repr(e.lower()) for e in emails)})"] if "email" in columns else []
            )
            if terms and (
                count := con.execute(
                    f'select count(*) from "{schema}"."{table}" where {" or ".join(terms)}'
                ).fetchone()[0]
            ):
                found[f"{schema}.{table}"] = count
    finally:
        con.close()
    return found


@pytest.fixture(scope="module")
def erased(tmp_path_factory):
    from sluice.lake.storage import open_lake

    tmp_path = tmp_path_factory.mktemp("erasure")
    env = {
        **isolated_environment(tmp_path / "airflow", tmp_path / "data"),
        "SLUICE_ERASURE_RETENTION_HOURS": "0",
        "SLUICE_RETRY_DELAY_SECONDS": "1",
    }
    run_ok([VENV_BIN / "airflow", "db", "migrate"], env, 300)
    run_ok([VENV_BIN / "airflow", "pools", "import", "include/airflow/pools.json"], env, 120)
    for start in BATCHES:
        run_batch(env, start)
    warehouse = tmp_path / "data" / "warehouse" / "sluice.duckdb"
    con = duckdb.connect(str(warehouse), read_only=True)
    users = con.execute("select distinct id, email from bronze.faker__users order by id limit 3").fetchall()
    con.close()
    (a_id, a_email), (b_id, b_email), (c_id, c_email) = users
    before = warehouse_snapshot(warehouse)
    held = people_rows(warehouse, [a_id, b_id, c_id], [a_email, b_email, c_email])
    conf = {
        "requests": [
            {"request_id": "req-email", "email": a_email.upper()},
            {"request_id": "req-user-id", "user_id": b_id},
            {"request_id": "req-both", "email": c_email, "user_id": c_id},
        ]
    }
    returncode, log = erase(env, conf, "2026-11-11T03:00:00+00:00")
    return {
        "env": env,
        "tmp": tmp_path,
        "warehouse": warehouse,
        "lake": open_lake(str(tmp_path / "data" / "lake")),
        "people": {"ids": [a_id, b_id, c_id], "emails": [a_email, b_email, c_email]},
        "before": before,
        "held": held,
        "conf": conf,
        "returncode": returncode,
        "log": log,
    }


def test_three_people_named_by_different_identifiers_are_gone_from_every_store(erased):
    from sluice.erasure.verify import scan_lake

    assert erased["returncode"] == 0, erased["log"][-4000:]
    people = erased["people"]
    assert people_rows(erased["warehouse"], people["ids"], people["emails"]) == {}
    identifiers = {"user_id": {str(i) for i in people["ids"]}, "email": set(people["emails"])}
    from sluice.core.sources import load_source
    from sluice.erasure.verify import declared_columns

    declared = declared_columns([load_source("faker")])
    assert scan_lake(erased["lake"], identifiers, declared) == []
    assert not any(email.encode() in erased["warehouse"].read_bytes() for email in people["emails"])


def test_every_other_row_is_unchanged(erased):
    after = warehouse_snapshot(erased["warehouse"])
    assert set(after) == set(erased["before"])
    assert set(erased["held"]) >= {
        "bronze.faker__users",
        "bronze.faker__purchases",
        "silver.customers",
        "marts.revenue_per_customer",
    }
    for table, rows in erased["before"].items():
        kept, before = Counter(map(repr, after[table])), Counter(map(repr, rows))
        assert not kept - before, f"{table}: a row other than the people's changed"
        assert len(rows) - len(after[table]) == erased["held"].get(table, 0), table


def test_the_audit_has_each_step_and_no_identifier(erased):
    from sluice.erasure import audit

    rows = audit.rows(erased["lake"])
    steps = {(row["request_id"], row["step"]) for row in rows}
    for request in ("req-email", "req-user-id", "req-both"):
        assert {
            (request, s) for s in ("resolved", "erased_warehouse", "erased_lake", "purged", "verified", "done")
        } <= steps
    verified = [json.loads(row["details"]) for row in rows if row["step"] == "verified"]
    assert all(v["clean"] for v in verified)
    # the proof also searched each person's own name, phone number...: values only they had
    resolved = [json.loads(row["details"]) for row in rows if row["step"] == "resolved"]
    assert all(r["personal_values"].get("pii:name") and r["personal_values"].get("pii:telephone") for r in resolved)
    text = json.dumps(rows, default=str).lower()
    assert not any(email.lower() in text for email in erased["people"]["emails"])


def test_a_rerun_changes_nothing_and_a_new_batch_that_sends_them_again_drops_them(erased):
    from sluice.ingest.landing import read_manifest

    before = warehouse_snapshot(erased["warehouse"])
    returncode, log = erase(erased["env"], erased["conf"], "2026-11-12T03:00:00+00:00")
    assert returncode == 0, log[-3000:]
    assert warehouse_snapshot(erased["warehouse"]) == before
    run_batch(erased["env"], "2026-11-10T12:00")  # source-faker sends every user again
    users = read_manifest(erased["lake"], "faker", "users", "20261110T120000Z")
    assert users["suppressed"] == 3 and users["read"] == users["landed"] + users["quarantined"] + 3
    people = erased["people"]
    assert people_rows(erased["warehouse"], people["ids"], people["emails"]) == {}


def test_a_request_naming_nobody_or_an_undeclared_type_fails_clearly_and_changes_nothing(erased):
    before = warehouse_snapshot(erased["warehouse"])
    returncode, log = erase(
        erased["env"], {"requests": [{"email": "nobody@nowhere.example"}]}, "2026-11-13T03:00:00+00:00"
    )
    assert returncode != 0 and "no data is held for 1 email identifier(s): nothing to erase" in log
    returncode, log = erase(erased["env"], {"requests": [{"passport": "X1"}]}, "2026-11-14T03:00:00+00:00")
    assert returncode != 0 and "identifier type(s) ['passport'] are declared by no stream" in log
    assert warehouse_snapshot(erased["warehouse"]) == before
