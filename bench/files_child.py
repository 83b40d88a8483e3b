"""One landing of one file in a fresh interpreter, for the ``files`` and ``files_compare``
benchmarks: the files driver's batch, the bare tool's read + Parquet write of the same
file, or the ``local`` driver's batch of Airbyte's source-s3 reading it from a bucket.
Prints nothing; writes its wall seconds, rows and peak RSS as JSON.

Usage: files_child.py driver|bare|airbyte jsonl|csv|xml <lake root> <file> <output.json>
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from files_data import AIRBYTE_SOURCE, RECORD_TAG, SOURCE

BATCH = "20261120T000000Z"


def land_driver(lake_root: Path, fmt: str) -> int:
    """The files driver's batch of the benchmark source (its inbox holds the one file)."""
    from sluice.core.sources import load_source
    from sluice.ingest.drivers import driver_for
    from sluice.lake.storage import open_lake

    source = load_source(SOURCE)
    manifests = driver_for(source).land(source, BATCH, open_lake(str(lake_root)))
    return manifests[fmt]["landed"]


def _airbyte_source(fmt: str):
    from sluice.core.sources import load_source

    return load_source(AIRBYTE_SOURCE[fmt])


def discover_airbyte(lake_root: Path, fmt: str) -> None:
    """The connector's catalog, stored in the lake before the clock starts, as every batch
    after a source's first finds it."""
    from sluice.ingest.local.protocol import connector_executable
    from sluice.ingest.local.sync import stored_catalog
    from sluice.lake.storage import open_lake

    source = _airbyte_source(fmt)
    stored_catalog(source, connector_executable(source.connector), source.connector_config, open_lake(str(lake_root)))


def land_airbyte(lake_root: Path, fmt: str) -> int:
    """The local driver's batch of source-s3 reading the file from the bucket."""
    from sluice.ingest.drivers import driver_for
    from sluice.lake.storage import open_lake

    source = _airbyte_source(fmt)
    manifests = driver_for(source).land(source, BATCH, open_lake(str(lake_root)))
    return manifests[fmt]["landed"]


def bare_jsonl(path: Path, out: Path) -> int:
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    table = pj.read_json(path)
    pq.write_table(table, out)
    return table.num_rows


def bare_csv(path: Path, out: Path) -> int:
    import pyarrow as pa
    import pyarrow.csv as pc
    import pyarrow.parquet as pq

    with path.open() as f:
        names = f.readline().rstrip("\n").split(",")
    table = pc.read_csv(path, convert_options=pc.ConvertOptions(column_types=dict.fromkeys(names, pa.string())))
    pq.write_table(table, out)
    return table.num_rows


def bare_xml(path: Path, out: Path) -> int:
    """lxml iterparse, each record's children as text, 10,000 rows per Arrow batch, cleared as read."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from lxml import etree

    rows: list[dict[str, Any]] = []
    count, writer = 0, None

    def flush() -> None:
        nonlocal writer
        table = pa.Table.from_pylist(rows)
        if writer is None:
            writer = pq.ParquetWriter(out, table.schema)
        writer.write_table(table)

    for _, element in etree.iterparse(str(path), events=("end",), tag=RECORD_TAG):
        rows.append({child.tag: child.text for child in element})
        element.clear(keep_tail=False)
        while element.getprevious() is not None:
            del element.getparent()[0]
        if len(rows) >= 10_000:
            flush()
            count += len(rows)
            rows = []
    if rows:
        flush()
        count += len(rows)
    if writer is not None:
        writer.close()
    return count


BARE = {"jsonl": bare_jsonl, "csv": bare_csv, "xml": bare_xml}


#: imported before the clock starts (the figure is the work, not the imports); the driver
#: imports the bare side's modules too, its readers use them
PRELOAD = {
    "driver": ("sluice.ingest.drivers", "sluice.ingest.files.batch", "sluice.lake.storage"),
    "airbyte": ("sluice.ingest.drivers", "sluice.ingest.local.sync", "sluice.lake.storage"),
    "bare": ("lxml.etree", "pyarrow.csv", "pyarrow.json", "pyarrow.parquet"),
}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    mode, fmt, lake_root, path, output = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5]
    for module in PRELOAD[mode] + PRELOAD["bare"]:
        importlib.import_module(module)
    if mode == "airbyte":
        discover_airbyte(lake_root, fmt)
    baseline = _rss_mb()
    start = time.perf_counter()
    if mode == "bare":
        rows = BARE[fmt](path, lake_root / f"bare-{fmt}.parquet")
    else:
        rows = (land_driver if mode == "driver" else land_airbyte)(lake_root, fmt)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(output).write_text(
        json.dumps({"seconds": seconds, "rows": rows, "peak_rss_mb": peak, "baseline_rss_mb": baseline})
    )


if __name__ == "__main__":
    main()
