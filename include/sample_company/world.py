"""The company's clean records, per 6-hour batch, as a pure function of (seed, scale, batch).

Every entity of batch ``k`` (batches counted from :data:`EPOCH`) draws from its own
``random.Random`` seeded by text, so a batch never depends on which other batches were
generated, and string seeding is stable across processes (no hash randomisation).
Ids are ``k * STRIDE + n``: unique across batches without a registry.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from dataclasses import dataclass, field

EPOCH = dt.datetime(2026, 1, 1)
BATCH = dt.timedelta(hours=6)
STRIDE = 100_000
#: earlier batches whose projects, customers and campaigns a batch's activity refers to
WINDOW = 3

SERVICES = (
    "Customer Service",
    "Brand Strategy",
    "Video Production",
    "Copywriting",
    "Web Design",
    "Social Media",
    "Photography",
    "Motion Graphics",
)
INDUSTRIES = ("Retail", "Hospitality", "Healthcare", "Education", "Fintech", "Fashion", "Automotive")
CHANNELS = ("Google Ads", "Meta", "LinkedIn", "TikTok", "Display")
PROJECT_STATUSES = ("planned", "active", "on hold", "delivered")
INVOICE_STATUSES = ("draft", "sent", "paid", "overdue")
ROLES = ("designer", "copywriter", "producer", "strategist", "developer", "account manager")
# names with letters outside ASCII that cp1252 still encodes (the time sheet's encoding)
FIRST = ("Renée", "José", "Zoë", "Jürgen", "Ana", "Liam", "Søren", "Chloé", "Mateo", "Ines", "Noah", "Björn")
LAST = ("Faßbender", "Muñoz", "Dubois", "Müller", "Smith", "Okafor", "Ødegaard", "Nguyen", "Rossi", "Kowalski")
ADJECTIVES = ("Blue", "Northwind", "Bright", "Copper", "Silver", "Urban", "Golden", "Quiet", "Bold", "Harbor")
NOUNS = ("Studio", "Labs", "Foods", "Outfitters", "Clinic", "Academy", "Motors", "Bank", "Hotels", "Goods")

#: records per batch at scale factor 1
BASE_COUNTS = {"customers": 12, "projects": 10, "campaigns": 4, "invoices": 12, "time_entries": 40, "ad_spend": 16}


@dataclass
class Record:
    """One clean record and the dirt kinds chosen for it (applied by :mod:`exports`)."""

    key: int
    clean: dict
    dirt: list[str] = field(default_factory=list)


def batch_index(start: dt.datetime) -> int:
    index, rest = divmod(start - EPOCH, BATCH)
    if rest or index < 0:
        raise ValueError(f"batch {start:%Y-%m-%dT%H:%M}: expected a 6-hour boundary from {EPOCH:%Y-%m-%d}")
    return index


def batch_start(index: int) -> dt.datetime:
    return EPOCH + index * BATCH


def count(stream: str, scale: float) -> int:
    n = max(1, round(BASE_COUNTS[stream] * scale))
    if n >= STRIDE:
        raise ValueError(f"scale {scale}: {stream} would exceed {STRIDE} records per batch")
    return n


def rng(seed: int, part: str, index: int) -> random.Random:
    return random.Random(f"{seed}:{part}:{index}")


def team(seed: int, scale: float) -> list[dict]:
    """The team: fixed for a seed and scale (people outlive batches)."""
    r = rng(seed, "team", 0)
    size = max(4, round(8 * scale))
    return [
        {
            "member_id": n + 1,
            "name": f"{FIRST[n % len(FIRST)]} {r.choice(LAST)}",
            "role": r.choice(ROLES),
            "hourly_rate": float(r.choice((65, 80, 95, 110, 140))),
        }
        for n in range(size)
    ]


def services() -> list[dict]:
    return [{"service_id": n + 1, "name": name} for n, name in enumerate(SERVICES)]


def _ascii(name: str) -> str:
    """A name as a mail address spells it: ASCII letters only."""
    name = name.lower().replace("ß", "ss").replace("ø", "o")
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()


def _window(index: int) -> range:
    return range(max(0, index - WINDOW), index + 1)


def customers(seed: int, scale: float, index: int) -> list[dict]:
    r = rng(seed, "customers", index)
    day = batch_start(index).date()
    out = []
    for n in range(count("customers", scale)):
        first, last = r.choice(FIRST), r.choice(LAST)
        out.append(
            {
                "customer_id": index * STRIDE + n + 1,
                "customer_name": f"{r.choice(ADJECTIVES)} {r.choice(NOUNS)}",
                "contact_name": f"{first} {last}",
                "contact_email": f"{_ascii(first)}.{_ascii(last)}.{index}.{n}@example.com",
                "phone": f"+1-555-{r.randrange(1000, 10000)}",
                "industry": r.choice(INDUSTRIES),
                "signup_date": (day - dt.timedelta(days=r.randrange(0, 365))).isoformat(),
                "employees": r.randrange(5, 1000),
                "annual_budget": round(r.uniform(20_000, 5_000_000), 2),
                "currency": "USD",
                "notes": r.choice(("", "Prefers email.", "Renewal due in Q1.", "Referred by a partner.")),
            }
        )
    return out


def projects(seed: int, scale: float, index: int) -> list[dict]:
    r = rng(seed, "projects", index)
    day = batch_start(index).date()
    owners = [c["customer_id"] for j in _window(index) for c in customers(seed, scale, j)]
    out = []
    for n in range(count("projects", scale)):
        start = day - dt.timedelta(days=r.randrange(0, 60))
        out.append(
            {
                "project_id": index * STRIDE + n + 1,
                "customer_id": r.choice(owners),
                "name": f"{r.choice(ADJECTIVES)} {r.choice(('Launch', 'Rebrand', 'Campaign', 'Website', 'Film'))}",
                "service": r.choice(SERVICES),
                "status": r.choice(PROJECT_STATUSES),
                "start_date": start.isoformat(),
                "end_date": (start + dt.timedelta(days=r.randrange(14, 120))).isoformat(),
                "budget": round(r.uniform(5_000, 400_000), 2),
                "currency": "USD",
            }
        )
    return out


def engagements(seed: int, scale: float, index: int) -> list[dict]:
    """Who works on which project of the batch, at which rate: two people per project."""
    r = rng(seed, "engagements", index)
    people = team(seed, scale)
    out = []
    for project in projects(seed, scale, index):
        for n, person in enumerate(r.sample(people, 2)):
            out.append(
                {
                    "engagement_id": project["project_id"] * 10 + n,
                    "project_id": project["project_id"],
                    "member_id": person["member_id"],
                    "role": person["role"],
                    "hourly_rate": person["hourly_rate"],
                }
            )
    return out


def campaigns(seed: int, scale: float, index: int) -> list[dict]:
    r = rng(seed, "campaigns", index)
    owners = [p for j in _window(index) for p in projects(seed, scale, j)]
    out = []
    for n in range(count("campaigns", scale)):
        project = r.choice(owners)
        out.append(
            {
                "campaign_id": index * STRIDE + n + 1,
                "project_id": project["project_id"],
                "customer_id": project["customer_id"],
                "name": f"{r.choice(ADJECTIVES)} {r.choice(('Reach', 'Awareness', 'Retargeting', 'Launch'))}",
                "channel": r.choice(CHANNELS),
                "currency": r.choice(("USD", "EUR")),
            }
        )
    return out


def time_entries(seed: int, scale: float, index: int) -> list[dict]:
    r = rng(seed, "time_entries", index)
    day = batch_start(index).date()
    work = [e for j in _window(index) for e in engagements(seed, scale, j)]
    names = {p["member_id"]: p["name"] for p in team(seed, scale)}
    service = {p["project_id"]: p["service"] for j in _window(index) for p in projects(seed, scale, j)}
    out = []
    for n in range(count("time_entries", scale)):
        engagement = r.choice(work)
        out.append(
            {
                "entry_id": index * STRIDE + n + 1,
                "project_id": engagement["project_id"],
                "engagement_id": engagement["engagement_id"],
                "team_member": names[engagement["member_id"]],
                "activity": service[engagement["project_id"]],
                "work_date": day.isoformat(),
                "hours": r.choice((0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 7.5, 8.0)),
                "note": r.choice(("Kick-off – brief", "Revisions", "Client call", "Shoot day", "Café interview")),
            }
        )
    return out


def invoices(seed: int, scale: float, index: int) -> list[dict]:
    r = rng(seed, "invoices", index)
    day = batch_start(index).date()
    billed = [p for j in _window(index) for p in projects(seed, scale, j)]
    out = []
    for n in range(count("invoices", scale)):
        project = r.choice(billed)
        issued = day - dt.timedelta(days=r.randrange(0, 20))
        out.append(
            {
                "invoice_id": index * STRIDE + n + 1,
                "customer_id": project["customer_id"],
                "project_id": project["project_id"],
                "issued_on": issued.isoformat(),
                "due_on": (issued + dt.timedelta(days=30)).isoformat(),
                "amount": round(r.uniform(500, 90_000), 2),
                "currency": "USD",
                "status": r.choice(INVOICE_STATUSES),
            }
        )
    return out


def ad_spend(seed: int, scale: float, index: int) -> list[dict]:
    r = rng(seed, "ad_spend", index)
    day = batch_start(index).date()
    running = [c for j in _window(index) for c in campaigns(seed, scale, j)]
    out = []
    for n in range(count("ad_spend", scale)):
        campaign = r.choice(running)
        impressions = r.randrange(1_000, 200_000)
        out.append(
            {
                "spend_id": index * STRIDE + n + 1,
                "date": day.isoformat(),
                "campaign_id": campaign["campaign_id"],
                "campaign_name": campaign["name"],
                "channel": campaign["channel"],
                "amount": round(r.uniform(50, 20_000), 2),
                "currency": campaign["currency"],
                "impressions": impressions,
                "clicks": r.randrange(0, min(impressions, 999)),
            }
        )
    return out
