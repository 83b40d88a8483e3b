"""The lake on S3 (Ceph radosgw on loopback) against the lake in a local folder.

The same faker batch is landed (``sync_batch``) into a folder and into a bucket,
alternated, then committed to bronze; the ratio of landing times is what S3 costs.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

from common import BATCH, BenchmarkError, faker_source, median

from sluice.ingest.commit import commit_batch
from sluice.ingest.local.protocol import connector_executable
from sluice.ingest.local.sync import stored_catalog, sync_batch
from sluice.lake.storage import Lake, open_lake

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def land_and_commit(source: Any, lake: Lake) -> dict[str, Any]:
    """Wall seconds of landing the batch (catalog stored beforehand) and of its bronze commits."""
    stored_catalog(source, connector_executable(source.connector), source.connector_config, lake)
    start = time.perf_counter()
    manifests = sync_batch(source, BATCH, lake=lake)
    landed = time.perf_counter()
    for stream in source.streams:
        commit_batch(source.name, stream, BATCH, lake)
    return {
        "land_seconds": landed - start,
        "commit_seconds": time.perf_counter() - landed,
        "records": sum(manifest["read"] for manifest in manifests.values()),
        "bytes": sum(manifest["bytes"] for manifest in manifests.values()),
    }


def bench_s3(count: int = 100_000, repeats: int = 3) -> dict[str, Any]:
    """Alternate a local and an S3 lake ``repeats`` times, each into a new empty lake."""
    from s3servers import start_radosgw

    source = faker_source(count)
    with tempfile.TemporaryDirectory(prefix="sluice-bench-s3-") as tmp:
        started = time.perf_counter()
        server = start_radosgw(Path(tmp) / "s3")
        server_start = time.perf_counter() - started
        environment = {**server.env, "SLUICE_AWS_CONN_ID": "sluice_bench_no_such_connection"}
        try:
            with mock.patch.dict(os.environ, environment):
                local, s3 = [], []
                for n in range(repeats):
                    local.append(land_and_commit(source, open_lake(str(Path(tmp) / f"lake-{n}"))))
                    s3.append(land_and_commit(source, open_lake(f"s3://{server.new_bucket()}/lake")))
        finally:
            server.stop()
    if {run["records"] for run in local + s3} != {local[0]["records"]}:
        raise BenchmarkError(f"record counts differ between runs: {local + s3}")
    s3_land, local_land = median([r["land_seconds"] for r in s3]), median([r["land_seconds"] for r in local])
    landed_mb = median([r["bytes"] for r in s3]) / 1e6
    return {
        "s3_landing_ratio": s3_land / local_land,
        "s3_landing_mb_per_s": landed_mb / s3_land,
        "s3_landing_seconds": s3_land,
        "s3_local_landing_seconds": local_land,
        "s3_local_landing_mb_per_s": landed_mb / local_land,
        "s3_commit_seconds": median([r["commit_seconds"] for r in s3]),
        "s3_local_commit_seconds": median([r["commit_seconds"] for r in local]),
        "s3_landed_mb": landed_mb,
        "s3_records": local[0]["records"],
        "s3_server_start_seconds": server_start,
        "s3_runs": {"local": local, "s3": s3},
        "s3_faker_count": count,
    }
