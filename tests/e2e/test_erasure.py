"""GDPR erasure on the embedded stack: on a copy of the day of batches run one at a time
(:mod:`e2e.one_day`), three of faker's people erased by different identifiers through the
``gdpr_erasure`` DAG, then proven gone."""

from __future__ import annotations

import json
import subprocess
from collections import Counter

import duckdb
import pytest

from e2e.one_day import BATCH_IDS, copy_of_the_day, run_batch
from e2e.snapshot import warehouse_snapshot
from environment import VENV_BIN
from residue import bytes_holding, delta_stats_holding, files_holding, metadata_holding

pytestmark = [pytest.mark.e2e, pytest.mark.one_day]
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


#: the people's user ids show in each table's log as the statistics of the files holding them
ID_COLUMNS = {"users": "id", "purchases": "user_id"}
QUARANTINED_BATCH = BATCH_IDS[1]


def quarantine(lake, people):
    """A quarantine file of the users stream holding the people's records, as the landing
    writes one for records that do not match the stream's schema (source-faker sends none)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sluice.ingest.landing import QUARANTINE_FILE, QUARANTINE_SCHEMA, quarantine_folder

    rows = [
        {
            "_airbyte_raw_id": f"raw-{user_id}",
            "_airbyte_extracted_at": 0,
            "_sluice_reason": "age: not an integer",
            "_airbyte_data": json.dumps({"id": user_id, "email": email, "telephone": phone, "age": "n/a"}),
        }
        for user_id, email, phone in people
    ]
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA), sink)
    path = f"{quarantine_folder(lake, 'faker', 'users', QUARANTINED_BATCH)}/{QUARANTINE_FILE}"
    lake.write_bytes(path, sink.getvalue().to_pybytes())


def search_stores(data, values, ids, hashes):
    """Where values lie, searched independently of the product's scan (:mod:`residue`):
    the warehouse file's bytes, every file of the lake, the index's files (for the
    people's salted hashes) and the bronze tables' logs (for their user ids)."""
    lake, warehouse = data / "lake", data / "warehouse" / "sluice.duckdb"
    return {
        "warehouse": bytes_holding([warehouse, warehouse.with_name(warehouse.name + ".wal")], values),
        "lake": files_holding(lake, values),
        "index": files_holding(lake / "index", [str(h) for h in hashes]),
        "log": {
            table: delta_stats_holding(lake / "bronze" / "faker" / table, column, [str(i) for i in ids])
            for table, column in ID_COLUMNS.items()
        },
    }


@pytest.fixture(scope="module")
def erased(tmp_path_factory):
    from sluice.lake.index import identifier_hashes
    from sluice.lake.storage import open_lake

    tmp_path = tmp_path_factory.mktemp("erasure")
    env = {**copy_of_the_day(tmp_path), "SLUICE_ERASURE_RETENTION_HOURS": "0", "SLUICE_RETRY_DELAY_SECONDS": "1"}
    warehouse = tmp_path / "data" / "warehouse" / "sluice.duckdb"
    con = duckdb.connect(str(warehouse), read_only=True)
    users = con.execute("select distinct id, email, telephone from bronze.faker__users order by id limit 4").fetchall()
    con.close()
    (a_id, a_email, _), (b_id, b_email, _), (c_id, c_email, _), control = users
    lake = open_lake(str(tmp_path / "data" / "lake"))
    quarantine(lake, [users[0], control])  # one of the people, and someone not erased
    salt = env["SLUICE_ERASURE_SALT"].encode()
    people = {
        "ids": [a_id, b_id, c_id],
        "emails": [a_email, b_email, c_email],
        # values only each person has: what a search of raw bytes and text can look for
        "values": [value for _, email, phone in users[:3] for value in (email, phone)],
        "hashes": identifier_hashes({"email": {a_email, b_email, c_email}, "user_id": {a_id, b_id, c_id}}, salt),
        "control": {
            "id": control[0],
            "values": list(control[1:]),
            "hashes": identifier_hashes({"email": {control[1]}, "user_id": {control[0]}}, salt),
        },
    }
    searched = (
        [*people["values"], *people["control"]["values"]],
        [*people["ids"], people["control"]["id"]],
        [*people["hashes"], *people["control"]["hashes"]],
    )
    before = warehouse_snapshot(warehouse)
    held = people_rows(warehouse, [a_id, b_id, c_id], [a_email, b_email, c_email])
    residue_before = search_stores(tmp_path / "data", *searched)
    conf = {
        "requests": [
            {"request_id": "req-email", "email": a_email.upper()},
            {"request_id": "req-user-id", "user_id": b_id},
            {"request_id": "req-both", "email": c_email, "user_id": c_id},
        ]
    }
    returncode, log = erase(env, conf, "2026-11-21T03:00:00+00:00")
    return {
        "env": env,
        "tmp": tmp_path,
        "warehouse": warehouse,
        "lake": lake,
        "people": people,
        "searched": searched,
        "before": before,
        "held": held,
        "residue_before": residue_before,
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


def test_no_byte_of_them_is_left_in_the_warehouse_file(erased):
    """A DELETE leaves the rows' bytes in the file's free blocks; the erasure rewrites the file."""
    people = erased["people"]
    assert erased["residue_before"]["warehouse"] == {*people["values"], *people["control"]["values"]}, (
        "before the erasure, the byte search finds everyone's email and telephone in the file"
    )
    after = search_stores(erased["tmp"] / "data", *erased["searched"])["warehouse"]
    assert after == set(people["control"]["values"]), "only the person not erased is left, still findable"


def test_no_file_of_the_lake_holds_them_after_the_purge(erased):
    """Data files, quarantine, Delta logs and checkpoints, manifests, the index, the
    requests table and the audit, searched as bytes and decoded rows, not by the product's scan."""
    people, control = erased["people"], erased["people"]["control"]
    before, after = erased["residue_before"], search_stores(erased["tmp"] / "data", *erased["searched"])
    a_id, quarantined = people["ids"][0], f"quarantine/faker/users/batch={QUARANTINED_BATCH}/part-00000.parquet"
    # the same searches found them before the erasure
    assert all(
        any(path.startswith("bronze/faker/users/_sluice_batch=") for path in before["lake"][value])
        for value in people["values"]
    ), before["lake"]
    assert quarantined in before["lake"][people["emails"][0]]
    assert all(before["index"][str(h)] for h in people["hashes"]), "each hash names files in the index"
    assert before["log"]["users"][str(a_id)], "the smallest user id is in the statistics of the users' files"
    # and find nothing of them after it
    assert {
        (table, i): files
        for table, found in after["log"].items()
        for i, files in found.items()
        if int(i) in people["ids"] and files
    } == {}
    assert {h: paths for h, paths in after["index"].items() if int(h) in people["hashes"] and paths} == {}
    assert {value: paths for value, paths in after["lake"].items() if value in people["values"] and paths} == {}
    # while the person not erased is still found where they are
    assert all(
        any(path.startswith("bronze/faker/users/_sluice_batch=") for path in after["lake"][value])
        and quarantined in after["lake"][value]
        for value in control["values"]
    ), after["lake"]
    assert all(after["index"][str(h)] for h in control["hashes"])
    assert any(name.endswith(".checkpoint.parquet") for name in after["log"]["users"][str(control["id"])])


def test_no_identifier_is_in_the_task_log_its_xcom_or_rendered_fields(erased):
    """The request's identifiers arrive in the run's conf (and Airflow's audit log keeps the
    command that sent it); nothing the erasure logs, returns or renders holds any of the
    people's identifiers, nor what they resolved to."""
    people, airflow_home = erased["people"], erased["tmp"] / "airflow"
    # `airflow dags test` writes the task's log to its output; a scheduled task's goes to the logs folder
    logs = erased["log"] + "".join(
        path.read_text(errors="replace") for path in (airflow_home / "logs").rglob("*") if path.is_file()
    )
    assert "erasure request req-email: done" in logs, "the search reads the erasure task's own log"
    assert [value for value in people["values"] if value.lower() in logs.lower()] == []
    markers = ["req-email", BATCH_IDS[0]]  # a request id, and the first batch's id
    held = metadata_holding(airflow_home / "airflow.db", [*people["values"], *markers])
    assert "xcom.value" in held["req-email"], "the search reads the erasure's XCom"
    assert "rendered_task_instance_fields.rendered_fields" in held[markers[1]], "and rendered fields"
    sent = {people["emails"][0], people["emails"][2]}  # in the conf; the others were resolved
    assert {value: held[value] for value in people["values"]} == {
        value: {"dag_run.conf", "log.extra"} if value in sent else set() for value in people["values"]
    }


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
    returncode, log = erase(erased["env"], erased["conf"], "2026-11-22T03:00:00+00:00")
    assert returncode == 0, log[-3000:]
    assert warehouse_snapshot(erased["warehouse"]) == before
    run_batch(erased["env"], "2026-11-21T00:00")  # source-faker sends every user again
    users = read_manifest(erased["lake"], "faker", "users", "20261121T000000Z")
    assert users["suppressed"] == 3 and users["read"] == users["landed"] + users["quarantined"] + 3
    people = erased["people"]
    assert people_rows(erased["warehouse"], people["ids"], people["emails"]) == {}


def test_a_request_naming_nobody_or_an_undeclared_type_fails_clearly_and_changes_nothing(erased):
    before = warehouse_snapshot(erased["warehouse"])
    returncode, log = erase(
        erased["env"], {"requests": [{"email": "nobody@nowhere.example"}]}, "2026-11-23T03:00:00+00:00"
    )
    assert returncode != 0 and "no data is held for 1 email identifier(s): nothing to erase" in log
    returncode, log = erase(erased["env"], {"requests": [{"passport": "X1"}]}, "2026-11-24T03:00:00+00:00")
    assert returncode != 0 and "identifier type(s) ['passport'] are declared by no stream" in log
    assert warehouse_snapshot(erased["warehouse"]) == before
