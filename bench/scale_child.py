"""One faker batch through landing, bronze commit and warehouse load, in this fresh process.

Usage: ``scale_child.py <faker count> <work folder> <output.json>``

The source's catalog is stored before the clock starts (every batch after a source's
first finds it), so the timed work is what grows with the batch. Writes the wall times
and this process's peak RSS (``ru_maxrss`` of RUSAGE_SELF: Sluice's own memory), and
separately that of its largest child (RUSAGE_CHILDREN: the connector). The baseline is
the peak once the libraries the steps use are imported, before any record is read.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent / "plugins")]

from common import BATCH, MB, faker_source  # noqa: E402

from sluice.ingest.commit import commit_batch  # noqa: E402
from sluice.ingest.local.protocol import connector_executable  # noqa: E402
from sluice.ingest.local.sync import stored_catalog, sync_batch  # noqa: E402
from sluice.lake.storage import open_lake  # noqa: E402
from sluice.warehouse.duckdb_load import load_batch  # noqa: E402


def _peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss * 1024 / MB  # ru_maxrss is in KiB on Linux


def _import_libraries() -> None:
    """What the steps import on first use, so the baseline includes the libraries."""
    for module in ("deltalake", "duckdb", "pyarrow.dataset", "pyarrow.parquet"):
        importlib.import_module(module)


def main(count: str, work: str, output: str) -> None:
    source = faker_source(int(count))
    lake, warehouse = open_lake(str(Path(work) / "lake")), Path(work) / "warehouse" / "sluice.duckdb"
    stored_catalog(source, connector_executable(source.connector), source.connector_config, lake)
    _import_libraries()
    baseline = _peak_mb(resource.RUSAGE_SELF)
    start = time.perf_counter()
    manifests = sync_batch(source, BATCH, lake=lake)
    landed = time.perf_counter()
    for stream in source.streams:
        commit_batch(source.name, stream, BATCH, lake)
    committed = time.perf_counter()
    rows = {
        stream.name: load_batch(source.name, stream.name, BATCH, lake, warehouse)["rows"] for stream in source.streams
    }
    loaded = time.perf_counter()
    result = {
        "seconds": loaded - start,
        "land_seconds": landed - start,
        "commit_seconds": committed - landed,
        "load_seconds": loaded - committed,
        "peak_rss_mb": _peak_mb(resource.RUSAGE_SELF),
        "baseline_peak_rss_mb": baseline,
        "connector_peak_rss_mb": _peak_mb(resource.RUSAGE_CHILDREN),
        "records": sum(manifest["read"] for manifest in manifests.values()),
        "warehouse_rows": rows,
    }
    Path(output).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(*sys.argv[1:4])
