"""One load of one JSON Lines file by dlt, for the ``files_compare`` benchmark; runs in the
dlt venv the benchmark builds (bench/requirements-dlt.txt). dlt's ``filesystem`` source
to its ``filesystem`` destination as Parquet, then the Parquet rows counted. Writes its
wall seconds, rows and peak RSS as JSON.

Usage: dlt_child.py dicts|arrow <file> <work folder> <output.json>

``dicts`` is the source's own ``read_jsonl`` (rows as dicts, normalised to Parquet);
``arrow`` a transformer yielding ``pyarrow.json`` tables, dlt's Arrow path.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

# no telemetry to send home, and nothing of a user's dlt config read
os.environ.update({"RUNTIME__DLTHUB_TELEMETRY": "false", "DLT_PROJECT_DIR": os.getcwd()})

import dlt
import pyarrow.json as pj
import pyarrow.parquet as pq
from dlt.sources.filesystem import filesystem, read_jsonl


@dlt.transformer
def read_jsonl_arrow(items):
    for item in items:
        with item.open() as f:
            yield pj.read_json(f)


def main() -> None:
    mode, path, work, output = sys.argv[1], Path(sys.argv[2]).resolve(), Path(sys.argv[3]).resolve(), sys.argv[4]
    files = filesystem(bucket_url=path.parent.as_uri(), file_glob=path.name)
    reader = read_jsonl() if mode == "dicts" else read_jsonl_arrow
    pipeline = dlt.pipeline(
        pipeline_name="bench",
        pipelines_dir=str(work / "pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=(work / "out").as_uri()),
        dataset_name="bench",
    )
    start = time.perf_counter()
    pipeline.run((files | reader).with_name("records"), loader_file_format="parquet")
    seconds = time.perf_counter() - start
    parquet = sorted((work / "out" / "bench" / "records").rglob("*.parquet"))
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parquet)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(output).write_text(json.dumps({"seconds": seconds, "rows": rows, "peak_rss_mb": peak, "files": len(parquet)}))


if __name__ == "__main__":
    main()
