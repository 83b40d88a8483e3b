"""Write one batch of the company's exports into a lake folder, with its ground truth:

- ``inbox/company/<stream>/<file>``: the dirty exports, as the files driver reads them;
- ``truth/company/<stream>/<stamp>.jsonl``: one line per row of that file (row number,
  record key, clean values, the dirt it carries with the raw text);
- ``truth/company/batches/<stamp>.json``: the files, their file-level dirt, the
  reference entities (team, services, engagements, campaigns) and the expected totals.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import exports, spoil, world

#: writes ``data`` at a path relative to the lake root (``inbox/company/...``)
Writer = Callable[[str, bytes], None]

STREAMS = ("customers", "projects", "invoices", "time_entries", "ad_spend")
SOURCE = "company"


def write_batch(root: Path | Writer, start: dt.datetime, seed: int = 42, scale: float = 1.0) -> dict:
    """Write batch ``start``'s exports and truth under ``root`` (a lake folder, or a writer
    of lake paths such as an S3 lake's); return the batch's truth."""
    write = root if callable(root) else _folder_writer(root)
    index = world.batch_index(start)
    stamp = f"{start:%Y%m%dT%H%M}"
    batch = {
        "source": SOURCE,
        "batch": {"start": start.isoformat(), "end": (start + world.BATCH).isoformat()},
        "seed": seed,
        "scale": scale,
        "files": {},
        "entities": {
            "team_members": world.team(seed, scale),
            "services": world.services(),
            "engagements": world.engagements(seed, scale, index),
            "campaigns": world.campaigns(seed, scale, index),
        },
    }
    clean_rows = {}
    for stream in STREAMS:
        records = getattr(world, stream)(seed, scale, index)
        rows = spoil.rows(stream, records, world.rng(seed, f"dirt:{stream}", index))
        if stream == "ad_spend":
            for row in rows:
                for entry in row.dirt:
                    entry["column"] = exports.AD_SPEND_PATHS.get(entry["column"], entry["column"])
        data, file_dirt = exports.render(stream, [row.raw for row in rows])
        name = exports.file_name(stream, stamp)
        write(f"inbox/{SOURCE}/{stream}/{name}", data)
        truth = [{"row": n, "key": row.key, "clean": row.clean, "dirt": row.dirt} for n, row in enumerate(rows)]
        lines = "".join(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n" for line in truth)
        write(f"truth/{SOURCE}/{stream}/{stamp}.jsonl", lines.encode("utf-8"))
        batch["files"][stream] = {
            "path": f"inbox/{SOURCE}/{stream}/{name}",
            "rows": len(rows),
            "records": len({row.key for row in rows}),
            "dirt": file_dirt,
        }
        clean_rows[stream] = truth
    batch["totals"] = totals(clean_rows)
    text = json.dumps(batch, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    write(f"truth/{SOURCE}/batches/{stamp}.json", text.encode("utf-8"))
    return batch


def records(truth_rows: list[dict]) -> dict:
    """Clean value per record key: a duplicate row carries its record's value, so any row
    of a key gives it."""
    return {row["key"]: row["clean"] for row in truth_rows}


def totals(truth: dict[str, list[dict]]) -> dict:
    """What later layers must add up to, from the clean records (duplicates counted once)."""
    invoices: dict[str, float] = {}
    for rec in records(truth["invoices"]).values():
        invoices[str(rec["customer_id"])] = invoices.get(str(rec["customer_id"]), 0.0) + rec["amount"]
    hours: dict[str, float] = {}
    for rec in records(truth["time_entries"]).values():
        hours[str(rec["project_id"])] = hours.get(str(rec["project_id"]), 0.0) + rec["hours"]
    spend: dict[str, dict] = {}
    for rec in records(truth["ad_spend"]).values():
        entry = spend.setdefault(str(rec["campaign_id"]), {"currency": rec["currency"], "amount": 0.0})
        entry["amount"] += rec["amount"]
    return {
        "invoice_total_by_customer": {k: round(v, 2) for k, v in sorted(invoices.items())},
        "hours_by_project": {k: round(v, 2) for k, v in sorted(hours.items())},
        "spend_by_campaign": {k: {**v, "amount": round(v["amount"], 2)} for k, v in sorted(spend.items())},
        "records": {stream: len(records(rows)) for stream, rows in truth.items()},
    }


def drop_batch(lake: Any, start: dt.datetime) -> dict | None:
    """Batch ``start``'s exports and truth, written into a Sluice lake (local or S3: its
    ``path``, ``exists`` and ``write_bytes``) unless its exports are there already: the
    batch's truth, or None when they were there."""
    stamp = f"{start:%Y%m%dT%H%M}"
    exported = [f"inbox/{SOURCE}/{stream}/{exports.file_name(stream, stamp)}" for stream in STREAMS]
    if all(lake.exists(lake.path(path)) for path in exported):
        return None
    return write_batch(lambda path, data: lake.write_bytes(lake.path(path), data), start)


def _folder_writer(root: Path) -> Writer:
    def write(relative: str, data: bytes) -> None:
        path = Path(root) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    return write
