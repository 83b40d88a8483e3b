"""The sample company generator: deterministic exports, dirty in every declared way, with
a truth that names each dirty row and whose totals add up.

The generator runs as make runs it (``python -m sample_company`` with ``include`` on the
path); the files are read back with the standard library and lxml, not the generator.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from lxml import etree

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "include" / "sample_company"
SOURCES = ROOT / "include" / "sources"
DECLARATION = SOURCES / "company.yml"
XSD = SOURCES / "company" / "invoices.xsd"
NAMESPACE = "urn:sluice:company:invoices"
STREAMS = ("customers", "projects", "invoices", "time_entries", "ad_spend")
STAMP = "20261120T0000"

#: every dirt kind, by stream, that the brief asks for (variants after ':')
CATALOGUE = {
    "customers": {
        "money_text:dollar_grouped",
        "money_text:thousands_k",
        "money_text:currency_suffix",
        "money_text:euro_decimal",
        "ambiguous_date:us_slash",
        "date_format:dmy_dotted",
        "number_words",
        "category_typo",
        "empty_null",
        "leading_zeros",
        "name_number_not_id",
        "quoted_newline",
        "exact_duplicate",
        "conflicting_duplicate",
    },
    "projects": {"money_text:thousands_k", "money_text:euro_decimal", "date_format:month_name"}
    | {"ambiguous_date:eu_slash", "category_typo", "empty_null", "exact_duplicate", "conflicting_duplicate"},
    "invoices": {"money_text:dollar_grouped", "money_text:currency_suffix", "money_text:euro_decimal"}
    | {"date_format:dmy_dotted", "date_format:compact", "ambiguous_date:us_slash", "category_typo"}
    | {"leading_zeros", "empty_null", "exact_duplicate", "conflicting_duplicate"},
    "time_entries": {"decimal_comma", "number_words", "date_format:day_month_name", "ambiguous_date:eu_slash"}
    | {"category_typo", "leading_zeros", "empty_null", "exact_duplicate", "conflicting_duplicate"},
    "ad_spend": {"money_text:by_currency", "date_format:compact", "ambiguous_date:us_slash", "category_typo"}
    | {"number_words", "empty_null", "exact_duplicate", "conflicting_duplicate"},
}
FILE_DIRT = {
    "customers": {"bom", "crlf_no_final_newline", "header_variants", "non_ascii_file_name"},
    "time_entries": {"cp1252_encoding", "semicolon_delimiter"},
    "projects": {"gzip"},
    "invoices": {"xml_namespace"},
    "ad_spend": {"nested_objects"},
}
DATE_FORMATS = {
    "dmy_dotted": "%d.%m.%Y",
    "month_name": "%b %d, %Y",
    "day_month_name": "%d-%b-%Y",
    "compact": "%Y%m%d",
    "us_slash": "%m/%d/%Y",
    "eu_slash": "%d/%m/%Y",
}


def generate(root: Path, *args: str) -> Path:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include")}
    subprocess.run(
        [sys.executable, "-m", "sample_company", "--root", str(root), *args],
        check=True,
        env=env,
        capture_output=True,
    )
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("lake"), "--batch", "2026-11-20T00:00", "--batches", "2")


def batch_truth(root: Path, stamp: str = STAMP) -> dict:
    return json.loads((root / "truth/company/batches" / f"{stamp}.json").read_text())


def truth_rows(root: Path, stream: str, stamp: str = STAMP) -> list[dict]:
    text = (root / "truth/company" / stream / f"{stamp}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def export(root: Path, stream: str, stamp: str = STAMP) -> Path:
    (path,) = (root / "inbox/company" / stream).glob(f"*{stamp}*")
    return path


def _flat(obj: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def raw_rows(root: Path, stream: str, stamp: str = STAMP) -> list[dict]:
    """The export's rows as a reader sees them, columns named as the truth names them."""
    data = export(root, stream, stamp).read_bytes()
    if stream == "customers":
        reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        header = [re.sub(r"[^a-z0-9]+", "_", name.strip().lower()) for name in next(reader)]
        return [dict(zip(header, row, strict=True)) for row in reader]
    if stream == "time_entries":
        return list(csv.DictReader(io.StringIO(data.decode("cp1252"), newline=""), delimiter=";"))
    if stream == "projects":
        return [json.loads(line) for line in gzip.decompress(data).decode("utf-8").splitlines()]
    if stream == "ad_spend":
        return [_flat(record) for record in json.loads(data)]
    records = etree.fromstring(data).findall(f"{{{NAMESPACE}}}invoice")
    return [{etree.QName(child).localname: child.text or "" for child in record} for record in records]


def _money(text: str) -> float:
    text = text.strip()
    if text.endswith("€"):
        return float(text[:-1].strip().replace(".", "").replace(",", "."))
    if text.endswith(" USD"):
        return float(text[:-4])
    if text.startswith("$"):
        return float(text[1:].replace(",", ""))
    assert text.endswith("k"), text
    return float(text[:-1]) * 1000


def _one_edit(a: str, b: str) -> bool:
    return len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1


def _words(n: int) -> str:
    ones = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
    ]
    ones += ["sixteen", "seventeen", "eighteen", "nineteen"]
    tens = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    if n < 20:
        return ones[n]
    if n < 100:
        return tens[n // 10] + ("" if n % 10 == 0 else "-" + ones[n % 10])
    return ones[n // 100] + " hundred" + ("" if n % 100 == 0 else " and " + _words(n % 100))


def check_dirt(stream: str, entry: dict, clean: dict, key: int) -> None:
    """The raw text is the dirt it is named as, and it stands for the clean value."""
    kind, column, raw = entry["kind"], entry["column"], entry.get("raw")
    value = clean.get(column.split(".")[-1]) if column else None
    if kind == "money_text":
        assert isinstance(raw, str) and _money(raw) == pytest.approx(value), entry
        suffix = {"dollar_grouped": " ", "thousands_k": "k", "currency_suffix": " USD", "euro_decimal": " €"}
        shown = entry["variant"]
        if shown == "by_currency":
            shown = "euro_decimal" if clean["currency"] == "EUR" else "currency_suffix"
        assert raw.endswith(suffix[shown]), entry
    elif kind in ("date_format", "ambiguous_date"):
        day = dt.datetime.strptime(raw, DATE_FORMATS[entry["variant"]]).date()
        assert day.isoformat() == value, entry
        assert raw != value
        if kind == "ambiguous_date":  # day and month could be read either way
            assert day.day <= 12 and day.day != day.month, entry
    elif kind == "number_words":
        assert raw == _words(int(value)) and not any(c.isdigit() for c in raw), entry
    elif kind == "decimal_comma":
        assert float(raw.replace(",", ".")) == value and "," in raw, entry
    elif kind == "category_typo":
        assert _one_edit(raw, value), entry
    elif kind == "empty_null":
        assert raw == "" and value is None, entry
    elif kind == "leading_zeros":
        assert raw.startswith("0") and int(raw) == value, entry
    elif kind == "name_number_not_id":
        (number,) = re.findall(r"\d+", raw)
        assert int(number) != key and raw == value, entry
    elif kind == "quoted_newline":
        assert "\n" in raw and raw == value, entry
    else:
        assert kind in ("exact_duplicate", "conflicting_duplicate"), entry


def test_same_seed_and_scale_give_the_same_bytes_and_another_seed_differs(lake: Path, tmp_path: Path) -> None:
    again = tree(generate(tmp_path / "again", "--batch", "2026-11-20T00:00", "--batches", "2"))
    first = tree(lake)
    assert len(first) == 2 * (2 * len(STREAMS) + 1)
    assert again == first
    # no clock in the bytes: gzip's header keeps no modification time
    gzipped = [data for name, data in first.items() if name.endswith(".gz")]
    assert gzipped and all(data[4:8] == bytes(4) for data in gzipped)
    # a batch alone is the same batch: nothing depends on what else was generated
    alone = tree(generate(tmp_path / "alone", "--batch", "2026-11-20T06:00"))
    assert alone == {name: data for name, data in first.items() if "20261120T0600" in name}
    other = tree(generate(tmp_path / "other", "--batch", "2026-11-20T00:00", "--batches", "2", "--seed", "7"))
    assert other.keys() == first.keys()
    assert all(other[name] != first[name] for name in first if name.startswith("inbox/"))


def test_scale_factor_scales_row_counts(lake: Path, tmp_path: Path) -> None:
    double = generate(tmp_path / "double", "--batch", "2026-11-20T00:00", "--scale", "2")
    for stream in STREAMS:
        one, two = len(raw_rows(lake, stream)), len(raw_rows(double, stream))
        # two duplicate rows per file on top of the records
        assert two - 2 == 2 * (one - 2), stream
        assert batch_truth(double)["files"][stream]["rows"] == two


@pytest.mark.parametrize("stream", STREAMS)
def test_every_dirt_kind_is_in_the_file_and_named_in_the_truth(lake: Path, stream: str) -> None:
    raws, truth = raw_rows(lake, stream), truth_rows(lake, stream)
    assert [t["row"] for t in truth] == list(range(len(raws)))
    key_column = {"customers": "customer_id", "projects": "project_id", "invoices": "invoice_id"}
    key_column |= {"time_entries": "entry_id", "ad_spend": "spend_id"}
    found = set()
    for line, raw in zip(truth, raws, strict=True):
        assert int(raw[key_column[stream]]) == line["key"]
        for entry in line["dirt"]:
            found.add(entry["kind"] + (f":{entry['variant']}" if "variant" in entry else ""))
            if entry["column"] and entry["kind"] not in ("exact_duplicate",):
                assert raw[entry["column"]] == entry["raw"], (line["row"], entry)
            check_dirt(stream, entry, line["clean"], line["key"])
            same_key = [i for i, t in enumerate(truth) if t["key"] == line["key"] and i != line["row"]]
            if entry["kind"] == "exact_duplicate":
                assert any(raws[i] == raw for i in same_key), line
            if entry["kind"] == "conflicting_duplicate":
                # the newer row comes later and differs in the named column only
                (newer,) = same_key
                assert newer > line["row"]
                differs = {c for c in raw if raw[c] != raws[newer][c]}
                assert differs == {entry["column"]}, (differs, entry)
                assert truth[newer]["clean"] == line["clean"]
    assert found == CATALOGUE[stream]
    file_dirt = {d["kind"] for d in batch_truth(lake)["files"][stream]["dirt"]}
    assert file_dirt == FILE_DIRT[stream]


def test_the_customers_export_carries_its_file_level_dirt(lake: Path) -> None:
    path = export(lake, "customers")
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in data and not data.endswith(b"\n")
    assert not path.name.isascii()
    header = next(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    variants = [name for name in header if name != name.strip().lower().replace(" ", "_").replace("-", "_")]
    assert any(" " in v for v in variants) and any("-" in v for v in variants) and any(v.isupper() for v in variants)
    declared = next(d for d in batch_truth(lake)["files"]["customers"]["dirt"] if d["kind"] == "header_variants")
    assert declared["header"] == header
    assert sorted(declared["columns"].values()) == sorted(header)


def test_truth_totals_equal_the_totals_of_the_clean_rows(lake: Path) -> None:
    clean = {stream: {t["key"]: t["clean"] for t in truth_rows(lake, stream)} for stream in STREAMS}
    invoices: dict[str, float] = {}
    for rec in clean["invoices"].values():
        invoices[str(rec["customer_id"])] = invoices.get(str(rec["customer_id"]), 0) + rec["amount"]
    hours: dict[str, float] = {}
    for rec in clean["time_entries"].values():
        hours[str(rec["project_id"])] = hours.get(str(rec["project_id"]), 0) + rec["hours"]
    spend: dict[str, float] = {}
    for rec in clean["ad_spend"].values():
        spend[str(rec["campaign_id"])] = spend.get(str(rec["campaign_id"]), 0) + rec["amount"]
    totals = batch_truth(lake)["totals"]
    assert totals["invoice_total_by_customer"] == pytest.approx(invoices)
    assert totals["hours_by_project"] == pytest.approx(hours)
    assert {k: v["amount"] for k, v in totals["spend_by_campaign"].items()} == pytest.approx(spend)
    assert totals["records"] == {stream: len(rows) for stream, rows in clean.items()}
    # duplicates are counted once: each file has more rows than records
    assert all(batch_truth(lake)["files"][s]["rows"] == len(clean[s]) + 2 for s in STREAMS)


def test_invoices_validate_against_the_xsd(lake: Path) -> None:
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    document = etree.parse(str(export(lake, "invoices")))
    assert schema.validate(document), schema.error_log
    assert etree.QName(document.getroot()).namespace == NAMESPACE
    # the schema constrains something: an invoice without its key does not pass
    record = document.getroot()[0]
    record.remove(record[0])
    assert not schema.validate(document)


def test_time_entries_are_cp1252_not_utf8(lake: Path) -> None:
    data = export(lake, "time_entries").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("cp1252")
    assert not text.isascii()
    names = {t["clean"]["team_member"] for t in truth_rows(lake, "time_entries")}
    assert all(name in text for name in names) and not all(name.isascii() for name in names)


def test_the_declaration_names_every_stream_as_the_files_driver_reads_it() -> None:
    declared = yaml.safe_load(DECLARATION.read_text())
    assert declared["name"] == "company" and declared["driver"] == "files" and declared["owner"]
    streams = declared["streams"]
    assert list(streams) == list(STREAMS)
    expected = {
        "customers": ("csv", "customer_id"),
        "projects": ("jsonl", "project_id"),
        "invoices": ("xml", "invoice_id"),
        "time_entries": ("csv", "entry_id"),
        "ad_spend": ("json", "spend_id"),
    }
    assert {name: (s["format"], s["record_key"]) for name, s in streams.items()} == expected
    assert streams["time_entries"]["delimiter"] == ";" and streams["time_entries"]["encoding"] == "cp1252"
    assert streams["invoices"]["namespaces"] == {"inv": NAMESPACE}
    assert streams["invoices"]["record_path"] == "inv:invoice"
    assert (SOURCES / streams["invoices"]["xsd"]).is_file()
    customers = streams["customers"]
    assert customers["subject_key"] == "contact_email"
    assert {"contact_name", "contact_email", "phone"} <= set(customers["pii"])


def test_the_declarations_patterns_match_the_exports(lake: Path) -> None:
    streams = yaml.safe_load(DECLARATION.read_text())["streams"]
    for stream, spec in streams.items():
        folder = lake / "inbox/company" / stream
        assert sorted(folder.glob(spec["pattern"])) == sorted(folder.iterdir()), stream
        # the declared columns exist in the export (the record key, the personal data)
        raw = raw_rows(lake, stream)[0]
        assert {spec["record_key"], *spec.get("pii", [])} <= set(raw), stream


def test_the_sources_loader_reads_the_declaration() -> None:
    from sluice.core import sources

    source = sources.load_source("company", SOURCES)
    assert [s.name for s in source.streams] == list(STREAMS)
    invoices = source.stream("invoices")
    assert invoices.files.format == "xml" and invoices.files.xsd == XSD
    assert dict(invoices.files.namespaces) == {"inv": NAMESPACE}
    assert source.stream("time_entries").files.encoding == "cp1252"
    assert source.stream("customers").subject_key == "contact_email"


#: dirt kinds whose rows no bronze table can hold: none the generator makes (money as text,
#: numbers as words, empty strings all land raw, as text); a row without its key would be one
UNLOADABLE = frozenset[str]()


def _at(row: dict, column: str):
    for part in column.split("."):
        row = (row or {}).get(part)
    return row


def test_the_files_driver_lands_the_batch_keeping_its_dirt_raw(lake: Path) -> None:
    import pyarrow.parquet as pq

    from sluice.core.sources import load_source
    from sluice.ingest.drivers import driver_for
    from sluice.lake.storage import open_lake

    source, store = load_source("company", SOURCES), open_lake(str(lake))
    manifests = driver_for(source).land(source, "20261120T000000Z", store)
    for stream in STREAMS:
        files = sorted((lake / "truth/company" / stream).glob("*.jsonl"))  # both batches are in the inbox
        truth = [json.loads(line) for path in files for line in path.read_text().splitlines()]
        unloadable = sum(1 for t in truth if t["key"] is None or {d["kind"] for d in t["dirt"]} & UNLOADABLE)
        manifest = manifests[stream]
        assert (manifest["read"], manifest["quarantined"]) == (len(truth), unloadable), stream
        key = source.stream(stream).record_key[0]
        rows = [r for name in manifest["files"] for r in pq.read_table(store.path(name)).to_pylist()]
        by_key: dict[str, list] = {}
        for row in rows:
            by_key.setdefault(str(row[key]).lstrip("0"), []).append(row)
        for t in truth:  # each dirty value is in bronze as the export wrote it
            for dirt in t["dirt"]:
                if isinstance(dirt.get("raw"), str) and dirt["column"]:
                    held = [_at(r, dirt["column"]) for r in by_key[str(t["key"]).lstrip("0")]]
                    xml_empty = dirt["raw"] == "" and source.stream(stream).files.format == "xml"
                    assert (None if xml_empty else dirt["raw"]) in held, (stream, dirt)  # an empty element has no text
