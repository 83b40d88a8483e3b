"""The batch summary make run prints: its landing counts add up."""

from __future__ import annotations

from sluice.ingest.landing import write_manifest
from sluice.report import batch_summary, format_summary

BATCH = "20261120T000000Z"


def manifest(stream: str, **counts: int) -> dict:
    return {"source": "faker", "stream": stream, "batch": BATCH, "attempt": "a1", **counts, "bytes": 0, "files": []}


def test_the_summary_counts_records_suppressed_after_an_erasure(local_lake, tmp_path):
    write_manifest(local_lake, manifest("users", read=1000, landed=997, quarantined=1, suppressed=2))
    # a manifest from before suppression was counted
    write_manifest(local_lake, manifest("products", read=100, landed=100, quarantined=0))
    summary = batch_summary(BATCH, local_lake, tmp_path / "warehouse.duckdb")
    users = summary["landing"]["faker.users"]
    assert users == {"read": 1000, "landed": 997, "quarantined": 1, "suppressed": 2}
    assert summary["landing"]["faker.products"]["suppressed"] == 0
    text = format_summary(summary)
    assert "faker.users              read    1,000  landed      997  quarantined      1  suppressed      2" in text
    assert "faker.products           read      100  landed      100  quarantined      0  suppressed      0" in text
    assert "faker.purchases" not in text  # not landed in this batch
