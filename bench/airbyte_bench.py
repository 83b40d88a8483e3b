"""What Sluice adds after an Airbyte sync, against a bare copy of the files the sync wrote.

The Airbyte stand-in syncs a faker batch into radosgw as Airbyte's S3 destination writes
it. From the job's success, the clock runs while Sluice takes the job's files (the
``land`` task's collection), commits them to the Delta bronze tables on radosgw and loads
them into the DuckDB warehouse. The denominator is a bare copy of the same files from
the S3 server to a local folder, in the same run; a second one adds DuckDB loading the
copied files by itself, the bare tools doing the same work as Sluice.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

from common import BATCH, BenchmarkError, median

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

CONNECTION_ID = "5b0c2f7e-3a61-4f4b-9d0e-2c8a1e6f7d93"


def _succeeded_job(standin: Any, lake: Any) -> dict[str, Any]:
    """Start the sync as the land task would, and wait until the stand-in wrote its files."""
    from sluice.ingest.airbyte.hook import AirbyteServerHook
    from sluice.ingest.airbyte.landing import record_job

    hook = AirbyteServerHook()
    job, _ = hook.start_sync(CONNECTION_ID)
    record_job(lake, "faker", BATCH, job)
    deadline = time.monotonic() + 600
    while job["status"] != "succeeded":
        if job["status"] in ("failed", "cancelled") or time.monotonic() > deadline:
            raise BenchmarkError(f"the stand-in's sync ended {job['status']}")
        time.sleep(0.2)
        job = hook.get_job(job["jobId"])
    return job


def _bare_copy(lake: Any, files: list[str], folder: Path) -> float:
    """Seconds to download ``files`` (lake paths) from the S3 server into ``folder``."""
    import shutil

    folder.mkdir(parents=True)
    start = time.perf_counter()
    for n, path in enumerate(files):
        with lake.fs.open_input_stream(path) as source, open(folder / f"{n}.parquet", "wb") as target:
            shutil.copyfileobj(source, target, 8 << 20)
    return time.perf_counter() - start


def _bare_load(folder: Path, warehouse: Path) -> float:
    """Seconds for DuckDB alone to load the copied files into a new table each."""
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect(str(warehouse))
    try:
        for n, path in enumerate(sorted(folder.glob("*.parquet"))):
            con.execute(f"CREATE TABLE t{n} AS SELECT * FROM read_parquet('{path}')")
    finally:
        con.close()
    return time.perf_counter() - start


def _sluice_after_sync(lake: Any, warehouse: Path) -> tuple[float, list[str], int]:
    """Seconds from the job's success to the batch in bronze and the warehouse."""
    from sluice.core.sources import load_source
    from sluice.ingest.airbyte.operators import AirbyteSyncOperator
    from sluice.ingest.commit import commit_batch
    from sluice.warehouse import duckdb_load

    source = load_source("faker")
    start = time.perf_counter()
    AirbyteSyncOperator(task_id="land", source="faker", batch=BATCH, deferrable=False).execute({})
    steps = {"collect": time.perf_counter() - start, "commit": 0.0, "load": 0.0}
    files, rows = [], 0
    for stream in source.streams:
        began = time.perf_counter()
        commit_batch("faker", stream, BATCH, lake)
        committed = time.perf_counter()
        rows += duckdb_load.load_batch("faker", stream.name, BATCH, lake, warehouse)["rows"]
        steps["commit"] += committed - began
        steps["load"] += time.perf_counter() - committed
    seconds = time.perf_counter() - start
    print("airbyte bench steps:", {k: round(v, 3) for k, v in steps.items()}, flush=True)
    for stream in source.streams:
        manifest = lake.read_json(lake.path("landing", "faker", stream.name, f"batch={BATCH}.json"))
        files += [lake.path(name) for name in manifest["files"]]
    return seconds, files, rows


def bench_airbyte(count: int = 100_000, repeats: int = 3) -> dict[str, Any]:
    from airbyte_faker import airbyte_include, faker_streams, s3_connection
    from airbyte_standin import AirbyteStandin

    from s3servers import start_radosgw
    from sluice.lake.storage import open_lake

    streams = faker_streams(count)
    records = sum(len(stream["records"]) for stream in streams.values())
    with tempfile.TemporaryDirectory(prefix="sluice-bench-airbyte-") as tmp:
        work = Path(tmp)
        server = start_radosgw(work / "s3")
        standin = None
        try:
            standin = AirbyteStandin(env={**os.environ, **server.env})
            environment = {
                **server.env,
                "SLUICE_AWS_CONN_ID": "sluice_bench_no_such_connection",
                "SLUICE_INCLUDE_DIR": str(airbyte_include(work / "include", CONNECTION_ID)),
                "AIRFLOW_CONN_AIRBYTE_DEFAULT": json.dumps(
                    {"conn_type": "airbyte", "host": standin.url, "login": "sluice", "password": "secret"}
                ),
            }
            overheads, copies, loads, rows = [], [], [], 0
            with mock.patch.dict(os.environ, environment):
                for n in range(repeats):
                    root = f"s3://{server.new_bucket()}/lake"
                    os.environ["SLUICE_LAKE_ROOT"] = root
                    lake = open_lake(root)
                    standin.setup(
                        status_seconds=0.1,
                        connections={CONNECTION_ID: s3_connection(root, server.endpoint, streams)},
                    )
                    _succeeded_job(standin, lake)
                    seconds, files, rows = _sluice_after_sync(lake, work / f"warehouse-{n}.duckdb")
                    overheads.append(seconds)
                    copies.append(_bare_copy(lake, files, work / f"copy-{n}"))
                    loads.append(_bare_load(work / f"copy-{n}", work / f"bare-{n}.duckdb"))
        finally:
            if standin is not None:
                standin.close()
            server.stop()
    if rows != records:
        raise BenchmarkError(f"the warehouse holds {rows} rows of the {records} synced")
    overhead, copy = median(overheads), median(copies)
    copy_and_load = median([c + load for c, load in zip(copies, loads, strict=True)])
    return {
        "airbyte_sync_records": records,
        "airbyte_sync_files": len(files),
        "airbyte_sync_overhead_seconds": round(overhead, 3),
        "airbyte_bare_copy_seconds": round(copy, 3),
        "airbyte_sync_overhead_ratio": round(overhead / copy, 2),
        "airbyte_sync_overhead_runs": [round(s, 3) for s in overheads],
        # the same files copied, then loaded by DuckDB alone: the bare tools doing the same work
        "airbyte_bare_copy_and_load_seconds": round(copy_and_load, 3),
        "airbyte_sync_vs_bare_copy_and_load_ratio": round(overhead / copy_and_load, 2),
    }
