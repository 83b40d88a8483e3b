"""Bad input for the files driver, one case per kind: each ends in quarantine with its
reason (or in a refusal the batch's ledger records with its reason), and the batch's
counts reconcile: read = landed + quarantined."""

from __future__ import annotations

import codecs
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from files_inbox import BATCH, LATER, Inbox
from sluice.ingest.commit import commit_batch

XSD = """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="invoices"><xs:complexType><xs:sequence>
    <xs:element name="invoice" maxOccurs="unbounded"><xs:complexType><xs:sequence>
      <xs:element name="invoice_id" type="xs:string"/>
      <xs:element name="amount" type="xs:decimal"/>
    </xs:sequence></xs:complexType></xs:element>
  </xs:sequence></xs:complexType></xs:element>
</xs:schema>"""
BOMB = (
    '<?xml version="1.0"?>\n<!DOCTYPE invoices [\n <!ENTITY a "aaaaaaaaaa">\n'
    + "".join(f' <!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">\n' for i in range(9))
    + "]>\n<invoices><invoice><invoice_id>1</invoice_id><amount>&j;</amount></invoice></invoices>"
)

JSONL = {"format": "jsonl", "record_key": "id"}
JSON = {"format": "json", "record_key": "id"}
CSV = {"format": "csv", "record_key": "id"}
XML = {"format": "xml", "record_path": "invoice", "record_key": "invoice_id"}


@dataclass
class Case:
    declaration: dict[str, Any]
    files: list[tuple[str, bytes | str]]
    reason: str
    landed: int
    quarantined: int
    #: files landed by an earlier batch
    earlier: list[tuple[str, bytes | str]] = field(default_factory=list)
    #: the ledger's status of the last file, when the batch refuses it rather than quarantine it
    status: str | None = None


def _invoice(invoice_id: str, amount: str) -> str:
    return f"<invoice><invoice_id>{invoice_id}</invoice_id><amount>{amount}</amount></invoice>"


CASES = {
    "truncated JSON line": Case(JSONL, [("a.jsonl", '{"id": 1}\n{"id": 2, "n": "ab')], "not valid JSON", 1, 1),
    "truncated JSON array": Case(JSON, [("a.json", '[{"id": 1}, {"id": 2')], "truncated", 0, 1),
    "a JSON array that does not end": Case(JSON, [("a.json", '[{"id": 1},')], "does not end", 0, 1),
    "invalid UTF-8 in JSON": Case(JSONL, [("a.jsonl", b'{"id": 1}\n{"id": 2, "n": "\xff\xfe"}\n')], "UTF-8", 1, 1),
    "invalid UTF-8 in CSV": Case(CSV, [("a.csv", b"id,name\n1,ok\n2,\xff\xfe\n")], "invalid UTF8", 0, 1),
    "text where the bronze column holds a number": Case(
        JSONL,
        [("b.jsonl", '{"id": 2, "amount": "lots"}\n{"id": 3, "amount": 6}\n')],
        "does not fit the stream schema: amount 'lots' is text, its bronze column int64",
        1,
        1,
        earlier=[("a.jsonl", '{"id": 1, "amount": 5}\n')],
    ),
    "a JSON line that is not an object": Case(JSONL, [("a.jsonl", '{"id": 1}\n[1, 2]\n')], "not a JSON object", 1, 1),
    "a JSON document that is not an array": Case(JSON, [("a.json", '{"id": 1}')], "not a JSON array", 0, 1),
    "XML not well-formed": Case(
        XML,
        [("a.xml", "<invoices>" + _invoice("1", "2") + "<invoice><invoice_id>2</invoice>")],
        "not well-formed",
        0,
        1,
    ),
    "XML failing its XSD": Case(
        {**XML, "xsd": "invoices.xsd"},
        [("a.xml", "<invoices>" + _invoice("1", "2.50") + _invoice("2", "lots") + "</invoices>")],
        "fails its XSD",
        0,
        1,
    ),
    "an entity-expansion bomb": Case(XML, [("a.xml", BOMB)], "declares XML entities", 0, 1),
    "an empty file": Case(JSONL, [("a.jsonl", b"")], "empty file", 0, 1),
    "an empty CSV": Case(CSV, [("a.csv", b"")], "empty file", 0, 1),
    "a gzip bomb": Case(JSONL, [("a.jsonl.gz", gzip.compress(b" " * 30_000_000, 9))], "compression bomb", 0, 1),
    "a gzip file that is not gzip": Case(JSONL, [("a.jsonl.gz", b'{"id": 1}\n')], "unreadable", 0, 1),
    "a truncated zstd file": Case(
        JSONL, [("a.jsonl.zst", b"\x28\xb5\x2f\xfd\x04\x58\x45\x00\x00")], "unreadable", 0, 1
    ),
    "a ragged CSV row": Case(
        CSV, [("a.csv", "id,name,city\n1,Ann,Oslo\n2,Bob\n3,Cy,Rome\n")], "row has 2 fields", 2, 1
    ),
    "a CSV in an undeclared encoding": Case(
        CSV, [("a.csv", codecs.encode("id,name\n1,Café Ørsted\n", "cp1252"))], "invalid UTF8", 0, 1
    ),
    "a record without its record key": Case(
        JSONL, [("a.jsonl", '{"id": 1}\n{"name": "x"}\n')], "record key 'id'", 1, 1
    ),
    "a CSV row with an empty record key": Case(CSV, [("a.csv", "id,name\n1,Ann\n,Bob\n")], "record key 'id'", 1, 1),
    "an XML record without its record key": Case(
        XML,
        [("a.xml", "<invoices>" + _invoice("1", "2") + "<invoice><amount>3</amount></invoice></invoices>")],
        "record key 'invoice_id'",
        1,
        1,
    ),
    "a duplicated file in one batch": Case(
        JSONL, [("a.jsonl", '{"id": 1}\n'), ("b.jsonl", '{"id": 1}\n')], "a.jsonl", 1, 0, status="duplicate"
    ),
    "a renamed identical file": Case(
        JSONL,
        [("renamed.jsonl", '{"id": 1}\n')],
        "old.jsonl",
        0,
        0,
        earlier=[("old.jsonl", '{"id": 1}\n')],
        status="duplicate",
    ),
    "a partial upload": Case(JSONL, [("a.jsonl.part", '{"id": 1}\n')], "partial upload", 0, 0, status="deferred"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_quarantined_with_its_reason_and_the_counts_reconcile(case, tmp_path, monkeypatch):
    inbox = Inbox(tmp_path, monkeypatch, {"s": case.declaration})
    (inbox.sources / "invoices.xsd").write_text(XSD)
    for name, data in case.earlier:
        inbox.drop("s", name, data)
    batch = BATCH
    if case.earlier:
        inbox.land(BATCH)
        commit_batch("co", inbox.source().stream("s"), BATCH, inbox.lake)  # the bronze table's types
        batch = LATER
    for name, data in case.files:
        inbox.drop("s", name, data)
    manifest = inbox.land(batch)["s"]  # the manifest passes check_landing
    assert (manifest["landed"], manifest["quarantined"]) == (case.landed, case.quarantined)
    assert (
        manifest["read"]
        == manifest["landed"] + manifest["quarantined"]
        == len(inbox.rows(manifest)) + len(inbox.quarantined("s", batch))
    )
    if case.status:  # refused by the ledger, with its reason
        entry = manifest["inputs"][-1]
        assert entry["status"] == case.status
        assert case.reason in json.dumps(entry)
    else:
        reasons = [row["_sluice_reason"] for row in inbox.quarantined("s", batch)]
        assert any(case.reason in reason for reason in reasons), reasons


@pytest.mark.parametrize(
    ("doctype", "reason"),
    [
        ('<!DOCTYPE invoices [<!ENTITY secret SYSTEM "file://{secret}">]>', "declares XML entities ['secret']"),
        ('<!DOCTYPE invoices SYSTEM "file://{dtd}">', "names an external DTD"),
        ("", "not well-formed XML"),
    ],
    ids=["an external entity", "an external DTD", "an undeclared entity"],
)
def test_an_external_entity_is_neither_fetched_nor_landed(doctype, reason, tmp_path, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("the-secret-payroll")
    dtd = tmp_path / "secret.dtd"
    dtd.write_text('<!ENTITY secret "the-secret-payroll">')
    inbox = Inbox(tmp_path, monkeypatch, {"s": XML})
    document = (
        f'<?xml version="1.0"?>\n{doctype.format(secret=secret, dtd=dtd)}\n'
        "<invoices><invoice><invoice_id>1</invoice_id><amount>&secret;</amount></invoice></invoices>"
    )
    inbox.drop("s", "a.xml", document)
    manifest = inbox.land()["s"]
    assert (manifest["read"], manifest["landed"], manifest["quarantined"]) == (1, 0, 1)
    (kept,) = inbox.quarantined("s")
    assert reason in kept["_sluice_reason"]
    written = b"".join(p.read_bytes() for p in inbox.root.rglob("*") if p.is_file() and "inbox" not in p.parts)
    assert b"the-secret-payroll" not in written


def _listing_then(inbox: Inbox, monkeypatch, change) -> None:
    """Make the inbox change (``change(path)``) between its listing and the read."""
    from sluice.ingest.files import batch, ledger

    def listed(*args):
        files = ledger.list_inbox(*args)
        for file in files:
            change(file.path)
        return files

    monkeypatch.setattr(batch, "list_inbox", listed)


def test_a_file_deleted_between_listing_and_reading_is_recorded_gone(tmp_path, monkeypatch):
    import os

    inbox = Inbox(tmp_path, monkeypatch, {"s": JSONL})
    inbox.drop("s", "a.jsonl", '{"id": 1}\n')
    _listing_then(inbox, monkeypatch, os.remove)
    manifest = inbox.land()["s"]
    assert (manifest["read"], manifest["landed"], manifest["quarantined"]) == (0, 0, 0)
    assert manifest["inputs"] == [
        {"path": "inbox/co/s/a.jsonl", "status": "gone", "reason": "deleted before it could be read"}
    ]


def test_a_file_still_growing_is_deferred_then_taken_whole(tmp_path, monkeypatch):
    inbox = Inbox(tmp_path, monkeypatch, {"s": JSONL})
    path = inbox.drop("s", "a.jsonl", '{"id": 1}\n')
    with monkeypatch.context() as patch:
        _listing_then(inbox, patch, lambda p: Path(p).write_text('{"id": 1}\n{"id": 2}\n'))
        manifest = inbox.land()["s"]
    assert manifest["read"] == 0
    (entry,) = manifest["inputs"]
    assert entry["status"] == "deferred" and "still being written" in entry["reason"]
    assert path.read_text().count("\n") == 2
    later = inbox.land(LATER)["s"]  # the upload is complete: taken, whole
    assert (later["read"], later["landed"]) == (2, 2)
    assert sorted(row["id"] for row in inbox.rows(later)) == [1, 2]


#: lands the inbox's batch in a process of its own; prints its counts and its peak memory
#: (KiB) before and after the landing
LAND_MEASURED = """
import json, resource, sys
from sluice.core.sources import load_source
from sluice.ingest.files.driver import FilesDriver
from sluice.lake.storage import open_lake
source, lake = load_source("co"), open_lake()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
manifest = FilesDriver().land(source, sys.argv[1], lake)["s"]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"manifest": manifest, "before": before, "after": after}))
"""


def test_a_100_mb_single_line_is_quarantined_unread_in_bounded_memory(tmp_path, monkeypatch):
    import subprocess
    import sys

    inbox = Inbox(tmp_path, monkeypatch, {"s": JSONL})
    line_bytes = 100 << 20
    path = inbox.drop("s", "a.jsonl", '{"id": 1}\n')
    with path.open("ab") as out:  # written a block at a time: the test holds no 100 MB either
        out.write(b'{"id": 2, "n": "')
        block = b"x" * (1 << 20)
        for _ in range(line_bytes // len(block)):
            out.write(block)
        out.write(b'"}\n{"id": 3}\n')
    done = subprocess.run(
        [sys.executable, "-c", LAND_MEASURED, BATCH], capture_output=True, text=True, timeout=120, check=True
    )
    measured = json.loads(done.stdout.splitlines()[-1])
    manifest = measured["manifest"]
    assert (manifest["read"], manifest["landed"], manifest["quarantined"]) == (3, 2, 1)
    assert sorted(row["id"] for row in inbox.rows(manifest)) == [1, 3]
    (kept,) = inbox.quarantined("s")
    assert "line longer than" in kept["_sluice_reason"]
    assert json.loads(kept["_airbyte_data"]) == {"file": "inbox/co/s/a.jsonl", "line": 2}
    grown = (measured["after"] - measured["before"]) << 10
    # a landing of a few small lines grows by some 50-80 MB (pyarrow's pools, the writer
    # thread); reading the line whole would add its 100 MB and its decoded text on top
    assert grown < line_bytes, f"the landing grew by {grown >> 20} MB reading a {line_bytes >> 20} MB line"
