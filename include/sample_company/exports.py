"""Write one stream's rows as the file a real export would be, byte for byte the same for
the same rows (no timestamps in gzip headers, fixed key order), and name the file-level
dirt each file carries."""

from __future__ import annotations

import csv
import gzip
import io
import json
from xml.sax.saxutils import escape

NAMESPACE = "urn:sluice:company:invoices"

#: the customers export's header as its producer spells it (spaces, hyphens, case)
CUSTOMER_HEADER = {
    "customer_id": "Customer ID",
    "customer_name": "customer-name",
    "contact_name": "Contact Name",
    "contact_email": "CONTACT_EMAIL",
    "phone": "phone",
    "industry": "Industry",
    "signup_date": "signup date",
    "employees": "Employees",
    "annual_budget": "annual-budget",
    "currency": "Currency",
    "notes": "notes",
}
#: ad spend's nesting: flat column -> path in the JSON object
AD_SPEND_PATHS = {
    "spend_id": "spend_id",
    "date": "date",
    "campaign_id": "campaign.campaign_id",
    "campaign_name": "campaign.name",
    "channel": "campaign.channel",
    "amount": "spend.amount",
    "currency": "spend.currency",
    "impressions": "metrics.impressions",
    "clicks": "metrics.clicks",
}


def file_name(stream: str, stamp: str) -> str:
    return {
        # a producer that names files in its own language: not every name is ASCII
        "customers": f"Kundenübersicht_{stamp}.csv",
        "projects": f"projects_{stamp}.jsonl.gz",
        "invoices": f"invoices_{stamp}.xml",
        "time_entries": f"Zeiterfassung_{stamp}.csv",
        "ad_spend": f"ad_spend_{stamp}.json",
    }[stream]


def render(stream: str, raws: list[dict]) -> tuple[bytes, list[dict]]:
    """The file's bytes, and its file-level dirt."""
    return _WRITERS[stream](raws)


def _customers(raws: list[dict]) -> tuple[bytes, list[dict]]:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CUSTOMER_HEADER.values())
    writer.writerows([raw[c] for c in CUSTOMER_HEADER] for raw in raws)
    text = out.getvalue().removesuffix("\r\n")
    dirt = [
        {"kind": "bom"},
        {"kind": "crlf_no_final_newline"},
        # the header in file order, and which clean column each name stands for
        {"kind": "header_variants", "header": list(CUSTOMER_HEADER.values()), "columns": dict(CUSTOMER_HEADER)},
        {"kind": "non_ascii_file_name"},
    ]
    return text.encode("utf-8-sig"), dirt


def _time_entries(raws: list[dict]) -> tuple[bytes, list[dict]]:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    columns = list(raws[0])
    writer.writerow(columns)
    writer.writerows([raw[c] for c in columns] for raw in raws)
    # a Windows spreadsheet's export: names and notes in cp1252, not UTF-8
    return out.getvalue().encode("cp1252"), [{"kind": "cp1252_encoding"}, {"kind": "semicolon_delimiter"}]


def _projects(raws: list[dict]) -> tuple[bytes, list[dict]]:
    text = "".join(json.dumps(raw, ensure_ascii=False) + "\n" for raw in raws)
    return gzip.compress(text.encode("utf-8"), mtime=0), [{"kind": "gzip"}]


def _invoices(raws: list[dict]) -> tuple[bytes, list[dict]]:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<inv:invoices xmlns:inv="{NAMESPACE}">']
    for raw in raws:
        lines.append("  <inv:invoice>")
        lines.extend(f"    <inv:{c}>{escape(v)}</inv:{c}>" for c, v in raw.items())
        lines.append("  </inv:invoice>")
    lines.append("</inv:invoices>")
    return ("\n".join(lines) + "\n").encode("utf-8"), [{"kind": "xml_namespace", "namespace": NAMESPACE}]


def nest(raw: dict) -> dict:
    nested: dict = {}
    for column, path in AD_SPEND_PATHS.items():
        *parents, leaf = path.split(".")
        place = nested
        for parent in parents:
            place = place.setdefault(parent, {})
        place[leaf] = raw[column]
    return nested


def _ad_spend(raws: list[dict]) -> tuple[bytes, list[dict]]:
    text = json.dumps([nest(raw) for raw in raws], ensure_ascii=False, indent=2) + "\n"
    return text.encode("utf-8"), [{"kind": "nested_objects"}]


_WRITERS = {
    "customers": _customers,
    "time_entries": _time_entries,
    "projects": _projects,
    "invoices": _invoices,
    "ad_spend": _ad_spend,
}
