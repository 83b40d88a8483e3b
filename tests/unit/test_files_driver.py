"""The files driver: its readers (CSV dialects and encodings, nested JSON, namespaced XML),
its ledger (each file taken once, by path and content hash; a rerun takes exactly its own
files), schema drift, and the same through an S3 lake."""

from __future__ import annotations

import codecs
import gzip
import json
import os
import posixpath

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from files_inbox import BATCH, LATER, Inbox
from sluice.ingest.commit import commit_batch
from sluice.lake.files import BATCH_COLUMN, bronze_table

JSONL = {"format": "jsonl", "record_key": "id"}
NEXT = "20261120T120000Z"


def committed(inbox: Inbox, stream: str, batch: str = BATCH) -> list[dict]:
    commit_batch("co", inbox.source().stream(stream), batch, inbox.lake)
    table = bronze_table(inbox.lake, "co", stream).to_pyarrow_dataset().to_table()
    return table.filter(pc.field(BATCH_COLUMN) == batch).to_pylist()


def test_csv_dialects_land_as_text_under_snake_case_names_the_header_kept(tmp_path, monkeypatch):
    inbox = Inbox(tmp_path, monkeypatch, {"c": {"format": "csv", "record_key": "customer_id", "delimiter": ";"}})
    # a byte-order mark, CRLF, a quoted delimiter and newline, no final newline
    inbox.drop("c", "a.csv", '\ufeffCustomer ID;Full Name;createdAt\r\n007;"Ann; Smith\r\nJr.";2026-01-02\r\n8;Bo;')
    manifest = inbox.land()["c"]
    assert (manifest["read"], manifest["landed"]) == (2, 2)
    assert inbox.rows(manifest) == [
        {"customer_id": "007", "full_name": "Ann; Smith\r\nJr.", "created_at": "2026-01-02", "_sluice_unmapped": None},
        {"customer_id": "8", "full_name": "Bo", "created_at": "", "_sluice_unmapped": None},
    ]
    schema = pq.read_schema(inbox.lake.path(manifest["files"][0]))
    assert schema.field("customer_id").type == pa.string()
    assert schema.field("customer_id").metadata == {b"original_name": b"Customer ID"}
    assert schema.field("created_at").metadata == {b"original_name": b"createdAt"}


def test_a_csv_in_its_declared_encoding_is_read_in_it(tmp_path, monkeypatch):
    declared = {"format": "csv", "record_key": "entry_id", "delimiter": ";", "encoding": "cp1252"}
    inbox = Inbox(tmp_path, monkeypatch, {"t": declared})
    inbox.drop("t", "a.csv", codecs.encode("entry_id;who;note\n1;Zoë Ørsted;5 €\n", "cp1252"))
    manifest = inbox.land()["t"]
    assert [(row["who"], row["note"]) for row in inbox.rows(manifest)] == [("Zoë Ørsted", "5 €")]


def test_json_keeps_its_types_and_nested_objects_as_structs(tmp_path, monkeypatch):
    inbox = Inbox(
        tmp_path,
        monkeypatch,
        {"spend": {"format": "json", "record_key": "spend_id"}, "projects": {"format": "jsonl", "record_key": "id"}},
    )
    spend = [
        {"spend_id": 1, "amount": 10.5, "at": "2026-11-20T01:00:00Z", "campaign": {"id": "c1", "channel": {"n": "x"}}},
        {"spend_id": 2, "amount": 3, "campaign": {"id": "c2"}},
    ]
    inbox.drop("spend", "a.json", json.dumps(spend, indent=2))
    inbox.drop(
        "projects",
        "a.jsonl.gz",
        gzip.compress(b'{"id": 1, "at": "2026-11-20T01:00:00Z", "owner": {"name": "Ann", "team": [1, 2]}}\n'),
    )
    manifests = inbox.land()
    schema = pq.read_schema(inbox.lake.path(manifests["spend"]["files"][0]))
    assert schema.field("spend_id").type == pa.int64() and schema.field("amount").type == pa.float64()
    assert schema.field("at").type == pa.string()  # what pyarrow would infer as a timestamp stays text
    assert pa.types.is_struct(schema.field("campaign").type)
    rows = committed(inbox, "spend")
    assert [r["campaign"] for r in sorted(rows, key=lambda r: r["spend_id"])] == [
        {"id": "c1", "channel": {"n": "x"}},
        {"id": "c2", "channel": None},
    ]
    (project,) = inbox.rows(manifests["projects"])
    assert project["owner"] == {"name": "Ann", "team": [1, 2]}
    assert project["at"] == "2026-11-20T01:00:00Z"  # JSON Lines through pyarrow.json: the text, as written


INVOICES = """<?xml version="1.0" encoding="UTF-8"?>
<inv:invoices xmlns:inv="urn:x:invoices" xmlns:o="urn:x:other">
  <!-- an export's comment -->
  <inv:invoice currency="EUR">
    <inv:invoice_id>1</inv:invoice_id><inv:amount> 1.200,50 </inv:amount>
    <inv:lines><inv:line sku="a">2</inv:line><inv:line sku="b">3</inv:line></inv:lines>
  </inv:invoice>
  <o:invoice><inv:invoice_id>99</inv:invoice_id></o:invoice>
  <inv:invoice><inv:invoice_id>2</inv:invoice_id><inv:amount/></inv:invoice>
</inv:invoices>"""


def test_namespaced_xml_records_by_their_path_every_value_text(tmp_path, monkeypatch):
    declared = {
        "format": "xml",
        "record_key": "invoice_id",
        "record_path": "inv:invoice",
        "namespaces": {"inv": "urn:x:invoices"},
    }
    inbox = Inbox(tmp_path, monkeypatch, {"i": declared})
    inbox.drop("i", "a.xml", INVOICES)
    manifest = inbox.land()["i"]
    assert (manifest["read"], manifest["landed"], manifest["quarantined"]) == (2, 2, 0)  # not o:invoice
    first, second = inbox.rows(manifest)
    assert (first["invoice_id"], first["currency"], first["amount"]) == ("1", "EUR", " 1.200,50 ")
    assert json.loads(first["lines"]) == {"line": [{"sku": "a", "text": "2"}, {"sku": "b", "text": "3"}]}
    assert (second["invoice_id"], second["amount"], second["currency"]) == ("2", None, None)


def test_a_file_is_taken_once_and_a_rerun_takes_exactly_its_own_files(tmp_path, monkeypatch):
    inbox = Inbox(tmp_path, monkeypatch, {"s": JSONL})
    inbox.drop("s", "a.jsonl", '{"id": 1}\n{"id": 2}\n')
    first = inbox.land(BATCH)["s"]
    assert [e["path"] for e in first["inputs"]] == ["inbox/co/s/a.jsonl"]
    assert sorted(r["id"] for r in committed(inbox, "s", BATCH)) == [1, 2]
    inbox.drop("s", "b.jsonl", '{"id": 3}\n')
    later = inbox.land(LATER)["s"]
    assert [e["path"] for e in later["inputs"]] == ["inbox/co/s/b.jsonl"]  # a.jsonl is not taken again
    assert later["read"] == 1
    inbox.drop("s", "c.jsonl", '{"id": 4}\n')
    rerun = inbox.land(BATCH)["s"]  # exactly the files the batch took, not b or c
    assert rerun["inputs"] == first["inputs"]
    assert sorted(r["id"] for r in committed(inbox, "s", BATCH)) == [1, 2]  # replaced, not doubled
    assert inbox.land(NEXT)["s"]["read"] == 1  # c, the one file no batch took


def test_a_landing_that_fails_takes_the_same_files_on_its_retry_and_lands_them_once(tmp_path, monkeypatch):
    from sluice.ingest.landing import BatchLanding, manifest_path
    from sluice.lake.storage import LakeAccessError

    inbox = Inbox(tmp_path, monkeypatch, {"s": JSONL})
    inbox.drop("s", "a.jsonl", '{"id": 1}\n{"id": 2}\n')
    with monkeypatch.context() as patch:
        patch.setattr(BatchLanding, "publish", lambda *a, **k: (_ for _ in ()).throw(OSError("the lake went away")))
        with pytest.raises(LakeAccessError, match=r"the lake at .+ failed: the lake went away"):
            inbox.land(BATCH)
    assert not inbox.lake.exists(manifest_path(inbox.lake, "co", "s", BATCH))  # nothing published, no ledger entry
    retry = inbox.land(BATCH)["s"]
    assert retry["read"] == 2 and [e["status"] for e in retry["inputs"]] == ["ingested"]
    assert sorted(r["id"] for r in committed(inbox, "s", BATCH)) == [1, 2]
    assert inbox.land(LATER)["s"]["read"] == 0


def test_a_corrected_file_under_the_same_name_is_a_new_version_and_a_late_one_is_taken(tmp_path, monkeypatch):
    inbox = Inbox(tmp_path, monkeypatch, {"s": JSONL})
    inbox.drop("s", "a.jsonl", '{"id": 1, "v": "wrong"}\n')
    inbox.land(BATCH)
    inbox.drop("s", "a.jsonl", '{"id": 1, "v": "right"}\n')
    late = inbox.drop("s", "late.jsonl", '{"id": 7}\n')
    os.utime(late, (946684800, 946684800))  # modified in 2000: no high-water mark skips it
    manifest = inbox.land(LATER)["s"]
    entries = {e["path"]: e for e in manifest["inputs"]}
    assert entries["inbox/co/s/a.jsonl"]["version"] == 2 and entries["inbox/co/s/late.jsonl"]["version"] == 1
    assert sorted((r["id"], r.get("v")) for r in inbox.rows(manifest)) == [(1, "right"), (7, None)]


def test_schema_drift_a_new_column_lands_and_a_type_change_widens_or_is_quarantined(tmp_path, monkeypatch):
    inbox = Inbox(tmp_path, monkeypatch, {"s": JSONL})
    inbox.drop("s", "a.jsonl", '{"id": 1, "amount": 5}\n')
    inbox.drop("s", "b.jsonl", '{"id": 2, "amount": 2.5}\n')  # the same batch: integers widen to floats
    first = inbox.land(BATCH)["s"]
    assert pq.read_schema(inbox.lake.path(first["files"][0])).field("amount").type == pa.float64()
    assert sorted((r["id"], r["amount"]) for r in committed(inbox, "s", BATCH)) == [(1, 5.0), (2, 2.5)]
    inbox.drop("s", "c.jsonl", '{"id": 3, "amount": 1, "channel": "web"}\n{"id": 4, "amount": "n/a"}\n')
    later = inbox.land(LATER)["s"]
    assert (later["read"], later["landed"], later["quarantined"]) == (2, 1, 1)
    (kept,) = inbox.quarantined("s", LATER)
    assert "does not fit the stream schema" in kept["_sluice_reason"] and '"n/a"' in kept["_airbyte_data"]
    rows = committed(inbox, "s", LATER)  # the new column added to the table, amount still a float
    assert [(r["id"], r["amount"], r["channel"]) for r in rows] == [(3, 1.0, "web")]


def test_the_sample_company_declaration_lands_through_the_s3_lake(tmp_path, monkeypatch, moto_s3):
    from s3servers import use_bucket
    from sluice.lake.storage import open_lake

    lake = open_lake(use_bucket(moto_s3, monkeypatch))
    inbox = Inbox(tmp_path, monkeypatch, {}, lake=lake)
    # the shape of include/sources/company.yml (the interface both sides follow)
    inbox.declare(
        {
            "customers": {"format": "csv", "pattern": "*.csv", "record_key": "customer_id", "encoding": "utf-8"},
            "projects": {"format": "jsonl", "pattern": "*.jsonl.gz", "record_key": "project_id"},
            "invoices": {
                "format": "xml",
                "pattern": "*.xml",
                "record_key": "invoice_id",
                "record_path": "inv:invoice",
                "namespaces": {"inv": "urn:x:invoices"},
            },
            "time_entries": {"format": "csv", "record_key": "entry_id", "delimiter": ";", "encoding": "cp1252"},
            "ad_spend": {"format": "json", "pattern": "*.json", "record_key": "spend_id"},
        }
    )
    inbox.drop("customers", "c.csv", "\ufeffCustomer_ID,Name\n1,Ann\n2,Bo,extra\n")
    inbox.drop("projects", "p.jsonl.gz", gzip.compress(b'{"project_id": 1}\n{"project_id": 2}\n'))
    inbox.drop("invoices", "i.xml", INVOICES)
    inbox.drop("time_entries", "t.csv", codecs.encode("entry_id;who\n1;Zoë\n", "cp1252"))
    inbox.drop("ad_spend", "a.json", '[{"spend_id": 1, "campaign": {"id": "c"}}]')
    inbox.drop("ad_spend", "a.json.part", "[")
    manifests = inbox.land()
    counts = {name: (m["read"], m["landed"], m["quarantined"]) for name, m in manifests.items()}
    assert counts == {
        "customers": (2, 1, 1),
        "projects": (2, 2, 0),
        "invoices": (2, 2, 0),
        "time_entries": (1, 1, 0),
        "ad_spend": (1, 1, 0),
    }
    assert [r["who"] for r in inbox.rows(manifests["time_entries"])] == ["Zoë"]
    assert inbox.land(LATER)["projects"]["read"] == 0  # the ledger holds on S3 too


def test_a_column_keeps_the_type_its_bronze_table_has(tmp_path, monkeypatch):
    inbox = Inbox(tmp_path, monkeypatch, {"s": JSONL})
    inbox.drop("s", "a.jsonl", '{"id": 1, "amount": 5}\n')
    inbox.land(BATCH)
    committed(inbox, "s", BATCH)  # amount is an integer column now
    inbox.drop("s", "b.jsonl", '{"id": 2, "amount": 7}\n{"id": 3, "amount": 2.5}\n')
    later = inbox.land(LATER)["s"]
    assert (later["read"], later["landed"], later["quarantined"]) == (2, 1, 1)
    assert "does not fit the stream schema" in inbox.quarantined("s", LATER)[0]["_sluice_reason"]
    assert [(r["id"], r["amount"]) for r in committed(inbox, "s", LATER)] == [(2, 7)]


def test_a_files_source_gets_an_ingestion_dag_whose_land_task_lands_the_inbox(tmp_path, monkeypatch):
    from sluice.dag_builder import ingestion_dag
    from sluice.ingest.drivers import LandOperator

    inbox = Inbox(tmp_path, monkeypatch, {"s": JSONL})
    inbox.drop("s", "a.jsonl", '{"id": 1}\n{"id": 2}\n')
    dag = ingestion_dag("co")
    land = dag.get_task("land")
    assert isinstance(land, LandOperator)
    assert "inbox/co/<stream>/" in dag.doc_md and {"s.commit", "s.load"} <= set(dag.task_ids)
    land.batch = BATCH  # the rendered template
    assert land.execute({}) == {"s": {"read": 2, "landed": 2, "quarantined": 0, "suppressed": 0}}


def test_a_rerun_whose_file_has_changed_quarantines_it_and_a_later_batch_takes_the_new_version(tmp_path, monkeypatch):
    inbox = Inbox(tmp_path, monkeypatch, {"s": JSONL})
    inbox.drop("s", "a.jsonl", '{"id": 1}\n')
    inbox.land(BATCH)
    inbox.drop("s", "a.jsonl", '{"id": 1}\n{"id": 2}\n')
    rerun = inbox.land(BATCH)["s"]
    assert (rerun["read"], rerun["landed"], rerun["quarantined"]) == (1, 0, 1)
    (kept,) = inbox.quarantined("s")
    assert f"the file batch {BATCH} took has changed" in kept["_sluice_reason"]
    later = inbox.land(LATER)["s"]
    assert [(e["status"], e["version"]) for e in later["inputs"]] == [("ingested", 2)]
    assert sorted(r["id"] for r in inbox.rows(later)) == [1, 2]


def test_quoted_newlines_across_block_boundaries_stay_in_their_value(tmp_path, monkeypatch):
    from sluice.ingest.files import readers

    monkeypatch.setattr(readers, "BLOCK_BYTES", 256)  # many blocks, boundaries inside quoted values
    inbox = Inbox(tmp_path, monkeypatch, {"c": {"format": "csv", "record_key": "id"}})
    inbox.drop("c", "a.csv", "id,note\n" + "".join(f'{i},"line one\nline two {i}"\n' for i in range(300)))
    manifest = inbox.land()["c"]
    assert (manifest["read"], manifest["landed"], manifest["quarantined"]) == (300, 300, 0)
    assert inbox.rows(manifest)[299]["note"] == "line one\nline two 299"


def test_json_lines_after_a_byte_order_mark_land(tmp_path, monkeypatch):
    inbox = Inbox(tmp_path, monkeypatch, {"s": JSONL})
    inbox.drop("s", "a.jsonl", '\ufeff{"id": 1, "n": "a"}\n{"id": 2, "n": "b"}\n')
    # with a bad line too, the file is read line by line: the mark still is no part of line 1
    inbox.drop("s", "b.jsonl", '\ufeff{"id": 3, "n": "c"}\n{"id": 4, "n": ')
    manifest = inbox.land()["s"]
    assert (manifest["read"], manifest["landed"], manifest["quarantined"]) == (4, 3, 1)
    assert [(r["id"], r["n"]) for r in inbox.rows(manifest)] == [(1, "a"), (2, "b"), (3, "c")]


def test_a_declaration_names_what_the_files_driver_needs(tmp_path, monkeypatch):
    from sluice.core.sources import SourceConfigError

    inbox = Inbox(tmp_path, monkeypatch, {"s": {"record_key": "id"}})
    with pytest.raises(
        SourceConfigError, match=r"stream 's' has no format \(one of \['jsonl', 'json', 'csv', 'xml'\]\)"
    ):
        inbox.source()
    inbox.declare({"s": {"format": "xml", "record_key": "id"}})
    with pytest.raises(SourceConfigError, match="stream 's' has no record_path"):
        inbox.source()
    (inbox.sources / "co.yml").write_text("connector: source-x\nstreams:\n  s: {record_key: id, format: csv}\n")
    with pytest.raises(SourceConfigError, match=r"\['format'\] are read by the files driver only"):
        inbox.source()


def test_values_that_disagree_in_type_widen_to_text_and_land_raw(tmp_path, monkeypatch):
    inbox = Inbox(tmp_path, monkeypatch, {"s": JSONL, "a": {"format": "json", "record_key": "id"}})
    inbox.drop("s", "a.jsonl", '{"id": 1, "amount": 5, "tag": {"k": 1}, "ok": true}\n')
    inbox.drop("s", "b.jsonl", '{"id": 2, "amount": "$1,407,730 ", "tag": "x", "ok": ""}\n{"id": 3, "amount": 2.5}\n')
    inbox.drop("a", "a.json", '[{"id": 1, "spend": 12}, {"id": 2, "spend": "twelve"}, {"spend": 3}]')
    manifests = inbox.land(BATCH)
    assert {n: (m["read"], m["landed"], m["quarantined"]) for n, m in manifests.items()} == {
        "s": (3, 3, 0),
        "a": (3, 2, 1),  # only the record without its key stays out
    }
    assert pq.read_schema(inbox.lake.path(manifests["s"]["files"][0])).field("amount").type == pa.string()
    rows = sorted(committed(inbox, "s"), key=lambda r: r["id"])
    assert [(r["amount"], r["tag"], r["ok"]) for r in rows] == [
        ("5", '{"k": 1}', "true"),
        ("$1,407,730 ", "x", ""),
        ("2.5", None, None),
    ]
    assert sorted((r["id"], r["spend"]) for r in committed(inbox, "a")) == [(1, "12"), (2, "twelve")]
    # the bronze column is text now: a later number lands as its text; a numeric column refuses text
    inbox.drop("s", "c.jsonl", '{"id": 4, "amount": 9, "tag": [1, 2], "ok": false}\n')
    later = inbox.land(LATER)["s"]
    assert (later["read"], later["landed"], later["quarantined"]) == (1, 1, 0)
    assert [(r["amount"], r["tag"], r["ok"]) for r in committed(inbox, "s", LATER)] == [("9", "[1, 2]", "false")]


def test_text_where_the_bronze_column_is_a_number_is_quarantined_with_why(tmp_path, monkeypatch):
    inbox = Inbox(tmp_path, monkeypatch, {"s": JSONL})
    inbox.drop("s", "a.jsonl", '{"id": 1, "amount": 5}\n')
    inbox.land(BATCH)
    committed(inbox, "s", BATCH)
    inbox.drop("s", "b.jsonl", '{"id": 2, "amount": "five"}\n{"id": 3, "amount": 6}\n')
    later = inbox.land(LATER)["s"]
    assert (later["read"], later["landed"], later["quarantined"]) == (2, 1, 1)
    (kept,) = inbox.quarantined("s", LATER)
    assert "amount 'five' is text, its bronze column int64" in kept["_sluice_reason"]
    assert [(r["id"], r["amount"]) for r in committed(inbox, "s", LATER)] == [(3, 6)]


def test_a_file_refused_half_way_leaves_none_of_its_parts_and_drift_rewrites_the_rest(tmp_path, monkeypatch):
    import sluice.ingest.landing as landing_module

    monkeypatch.setattr(landing_module, "GROUP_BYTES", 1)  # each block written as it is read, to the file's own part
    inbox = Inbox(tmp_path, monkeypatch, {"s": JSONL, "x": {"format": "xml", "record_key": "id", "record_path": "r"}})
    inbox.drop("s", "a.jsonl", "".join(f'{{"id": {i}, "amount": {i}}}\n' for i in range(3000)))
    inbox.drop("s", "b.jsonl", '{"id": 5000, "amount": "n/a", "extra": true}\n')  # amount widens to text
    records = "".join(f"<r><id>{i}</id></r>" for i in range(3000))
    inbox.drop("x", "a.xml", f"<rs>{records}<r><id>broken</r></rs>")  # not well-formed at its very end
    inbox.drop("x", "b.xml", "<rs><r><id>7</id><q>w</q></r></rs>")
    manifests = inbox.land()
    assert {n: (m["read"], m["landed"], m["quarantined"]) for n, m in manifests.items()} == {
        "s": (3001, 3001, 0),
        "x": (2, 1, 1),
    }
    assert [e["status"] for e in manifests["x"]["inputs"]] == ["quarantined", "ingested"]
    for manifest in manifests.values():  # nothing in the batch's folder but the manifest's files
        folder = posixpath.dirname(inbox.lake.path(manifest["files"][0]))
        assert sorted(inbox.lake.list_files(folder)) == sorted(inbox.lake.path(f) for f in manifest["files"])
    rows = {r["id"]: r for r in committed(inbox, "s")}
    assert (rows[2999]["amount"], rows[5000]["amount"], rows[5000]["extra"], rows[1]["extra"]) == (
        "2999",
        "n/a",
        True,
        None,
    )
    assert [(r["id"], r["q"]) for r in committed(inbox, "x")] == [("7", "w")]


def test_records_without_fields_count_and_a_later_records_fields_are_not_lost(tmp_path, monkeypatch):
    inbox = Inbox(tmp_path, monkeypatch, {"a": {"format": "json", "record_key": "id"}})
    inbox.drop("a", "a.json", '[{}, {"id": 1, "n": "x"}]')  # the first record has no field: the second's still count
    manifest = inbox.land()["a"]
    assert (manifest["read"], manifest["landed"], manifest["quarantined"]) == (2, 1, 1)
    assert [(r["id"], r["n"]) for r in inbox.rows(manifest)] == [(1, "x")]
