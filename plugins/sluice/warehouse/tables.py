"""Names of the warehouse's tables, the same on every warehouse."""

from __future__ import annotations


def warehouse_table(source: str, stream: str) -> str:
    """The bronze table of a source stream: ``<source>__<stream>``."""
    return f"{source}__{stream}"
