"""Erased people stay erased: the salted hashes of their identifiers, which landing drops.

The list is a Delta table ``erasure/suppressed`` (one column, ``subject_hash``); an
erasure appends the hashes of every identifier it resolved, in one commit. A landing
reads it once and drops every record whose identifier columns hash to one of them,
counting it as ``suppressed`` (read = landed + quarantined + suppressed).
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from sluice.lake.storage import Lake


def suppression_path(lake: Lake) -> str:
    return lake.path("erasure", "suppressed")


def suppressed_hashes(lake: Lake) -> frozenset[int]:
    """The hashes of every erased identifier (empty before the first erasure)."""
    table = lake.delta_table(suppression_path(lake))
    if table is None:
        return frozenset()
    return frozenset(table.to_pyarrow_table(columns=["subject_hash"]).column(0).to_pylist())


def suppress(lake: Lake, hashes: Iterable[int]) -> int:
    """Add ``hashes`` to the list (those already there are not added again); returns how
    many were new."""
    new = sorted(set(hashes) - suppressed_hashes(lake))
    if new:
        lake.append_to_table(suppression_path(lake), pa.table({"subject_hash": pa.array(new, pa.int64())}))
    return len(new)
