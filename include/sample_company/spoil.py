"""Turn a stream's clean records into the rows its export carries, and say which row has
which dirt. Dirt kinds are dealt to rows in rotation (with clean rows between), so every
kind a stream declares is present in every batch's file from scale factor 1 up (a file
needs at least as many records as its stream has kinds)."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from . import dirt, world

# Per stream: (column, kind) dealt in rotation. A kind may carry a variant after ':'.
ROW_DIRT = {
    "customers": [
        ("annual_budget", "money_text:dollar_grouped"),
        ("annual_budget", "money_text:thousands_k"),
        ("annual_budget", "money_text:currency_suffix"),
        ("annual_budget", "money_text:euro_decimal"),
        ("signup_date", "ambiguous_date:us_slash"),
        ("signup_date", "date_format:dmy_dotted"),
        ("employees", "number_words"),
        ("industry", "category_typo"),
        ("phone", "empty_null"),
        ("customer_id", "leading_zeros"),
        ("customer_name", "name_number_not_id"),
        ("notes", "quoted_newline"),
    ],
    "projects": [
        ("budget", "money_text:thousands_k"),
        ("budget", "money_text:euro_decimal"),
        ("start_date", "date_format:month_name"),
        ("start_date", "ambiguous_date:eu_slash"),
        ("service", "category_typo"),
        ("end_date", "empty_null"),
    ],
    "invoices": [
        ("amount", "money_text:dollar_grouped"),
        ("amount", "money_text:currency_suffix"),
        ("amount", "money_text:euro_decimal"),
        ("issued_on", "date_format:dmy_dotted"),
        ("issued_on", "date_format:compact"),
        ("issued_on", "ambiguous_date:us_slash"),
        ("status", "category_typo"),
        ("customer_id", "leading_zeros"),
        ("due_on", "empty_null"),
    ],
    "time_entries": [
        ("hours", "decimal_comma"),
        ("hours", "number_words"),
        ("work_date", "date_format:day_month_name"),
        ("work_date", "ambiguous_date:eu_slash"),
        ("activity", "category_typo"),
        ("project_id", "leading_zeros"),
        ("note", "empty_null"),
    ],
    "ad_spend": [
        ("amount", "money_text:by_currency"),
        ("date", "date_format:compact"),
        ("date", "ambiguous_date:us_slash"),
        ("channel", "category_typo"),
        ("clicks", "number_words"),
        ("clicks", "empty_null"),
    ],
}

#: the column a conflicting duplicate changes, per stream
CONFLICT_COLUMN = {
    "customers": "contact_email",
    "projects": "status",
    "invoices": "status",
    "time_entries": "hours",
    "ad_spend": "impressions",
}
VOCABULARY = {
    "industry": world.INDUSTRIES,
    "service": world.SERVICES,
    "activity": world.SERVICES,
    "status": world.INVOICE_STATUSES,
    "channel": world.CHANNELS,
}
#: streams whose export is text: every value is written as a string
TEXT_STREAMS = ("customers", "invoices", "time_entries")
KEYS = {"customers": "customer_id", "projects": "project_id", "invoices": "invoice_id"}
KEYS |= {"time_entries": "entry_id", "ad_spend": "spend_id"}


@dataclass
class Row:
    key: int
    clean: dict
    raw: dict
    dirt: list[dict] = field(default_factory=list)


def rows(stream: str, records: list[dict], r: random.Random) -> list[Row]:
    """The export's rows: spoiled records, then the duplicates real exports carry."""
    kinds = ROW_DIRT[stream]
    out = []
    for n, record in enumerate(records):
        slot = n % (len(kinds) + 2)  # two clean rows in each round
        clean = dict(record)
        row = Row(key=clean[KEYS[stream]], clean=clean, raw=_render(stream, clean))
        if slot < len(kinds):
            column, kind = kinds[slot]
            _spoil(stream, row, column, kind, r)
        out.append(row)
    return _duplicate(stream, out, r)


def _render(stream: str, clean: dict) -> dict:
    if stream not in TEXT_STREAMS:
        return dict(clean)
    return {column: _text(column, value) for column, value in clean.items()}


def _text(column: str, value: object) -> str:
    if value is None:
        return ""
    if column in ("annual_budget", "amount", "budget"):
        return f"{value:.2f}"
    if column == "hours":
        return f"{value:g}"
    return str(value)


def _spoil(stream: str, row: Row, column: str, kind: str, r: random.Random) -> None:
    """Spoil one column: fix the clean value to one the dirt can show, write the dirt."""
    name, _, variant = kind.partition(":")
    clean = row.clean
    if name == "money_text":
        # by_currency: the text follows the record's currency (a campaign bills in one)
        shown = variant
        if variant == "by_currency":
            shown = "euro_decimal" if clean["currency"] == "EUR" else "currency_suffix"
        clean[column], clean["currency"] = dirt.money_clean(shown, clean[column])
        raw = dirt.money_text(shown, clean[column])
        row.raw.update(_render(stream, {"currency": clean["currency"]}))
    elif name in ("date_format", "ambiguous_date"):
        day = dt.date.fromisoformat(clean[column])
        if name == "ambiguous_date":
            day = dirt.ambiguous_day(day)
            clean[column] = day.isoformat()
        raw = dirt.date_text(variant, day)
    elif name == "number_words":
        clean[column] = max(1, round(clean[column]))
        clean[column] = float(clean[column]) if column == "hours" else clean[column]
        raw = dirt.number_words(int(clean[column]))
    elif name == "decimal_comma":
        raw = f"{clean[column]:.1f}".replace(".", ",")
    elif name == "category_typo":
        raw = dirt.typo(r, clean[column], VOCABULARY[column])
    elif name == "empty_null":
        clean[column], raw = None, ""
    elif name == "leading_zeros":
        raw = dirt.leading_zeros(clean[column])
    elif name == "name_number_not_id":
        number = r.randrange(1, 1000)
        clean[column] = raw = f"{clean[column]} {number}"
    elif name == "quoted_newline":
        clean[column] = raw = "Billing contact changed.\nSend invoices to finance."
    else:
        raise ValueError(kind)
    row.raw[column] = raw
    row.dirt.append({"kind": name, **({"variant": variant} if variant else {}), "column": column, "raw": raw})


def _duplicate(stream: str, out: list[Row], r: random.Random) -> list[Row]:
    """An exact copy of one row at the end, and a stale version of another (same key, one
    column different) just before it: the later row is the record's value."""
    exact = out[r.randrange(len(out))]
    twin_dirt = [{"kind": "exact_duplicate", "column": None}, *exact.dirt]
    twin = Row(exact.key, dict(exact.clean), dict(exact.raw), twin_dirt)
    newer_at = r.randrange(len(out))
    newer = out[newer_at]
    column = CONFLICT_COLUMN[stream]
    value = newer.clean[column]
    if column == "contact_email":
        stale = "old." + value
    elif column == "status":
        stale = next(s for s in VOCABULARY[column] if s != value)
    elif column == "hours":
        stale = value + 1.0
    else:
        stale = value + 1
    stale_raw = dict(newer.raw)
    stale_raw[column] = _text(column, stale) if stream in TEXT_STREAMS else stale
    # the stale row keeps the newer row's other dirt; its own value in the column is stale
    kept = [d for d in newer.dirt if d["column"] != column]
    conflict = {"kind": "conflicting_duplicate", "column": column, "raw": stale_raw[column]}
    stale_row = Row(newer.key, dict(newer.clean), stale_raw, [conflict, *kept])
    return out[:newer_at] + [stale_row] + out[newer_at:] + [twin]
