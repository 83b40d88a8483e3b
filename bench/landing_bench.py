"""Landing overhead: sync_batch against the raw connector read it wraps."""

from __future__ import annotations

import json
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from common import BATCH, BenchmarkError, faker_source, median, time_raw_read, write_read_inputs

from sluice.core.sources import SourceConfig
from sluice.ingest.local.protocol import connector_executable, discover, read
from sluice.ingest.local.sync import stored_catalog, sync_batch
from sluice.lake.storage import open_lake


def time_protocol_read(source: SourceConfig, catalog: Path) -> float:
    """Wall seconds of the same read through the protocol layer, decoding every
    message but landing nothing: the cost of the pipe and of JSON decoding."""
    executable = connector_executable(source.connector)
    configured = json.loads(catalog.read_text())
    start = time.perf_counter()
    for _ in read(executable, source.connector_config, configured):
        pass
    return time.perf_counter() - start


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def time_sync(source: SourceConfig, work: Path) -> dict[str, Any]:
    """Wall seconds of sync_batch (read + land) into a lake that keeps the catalog.

    This is every batch after the first: the discovered catalog is stored with the
    source's state and reused (see ``stored_catalog``), so the connector is started
    once. The first batch's extra ``discover`` is reported on its own. Also the CPU
    seconds spent in this process (JSON decoding, Arrow, Parquet) and in the
    connector process it started.
    """
    lake = open_lake(str(work / "lake"))
    stored_catalog(source, connector_executable(source.connector), source.connector_config, lake)
    shutil.rmtree(work / "lake" / "landing", ignore_errors=True)
    own, children = (
        _cpu_seconds(resource.RUSAGE_SELF),
        _cpu_seconds(resource.RUSAGE_CHILDREN),
    )
    start = time.perf_counter()
    manifests = sync_batch(source, BATCH, lake=lake)
    seconds = time.perf_counter() - start
    result = {
        "seconds": seconds,
        "own_cpu_seconds": _cpu_seconds(resource.RUSAGE_SELF) - own,
        "connector_cpu_seconds": _cpu_seconds(resource.RUSAGE_CHILDREN) - children,
        "records": {name: manifest["read"] for name, manifest in manifests.items()},
        "quarantined": sum(manifest["quarantined"] for manifest in manifests.values()),
    }
    shutil.rmtree(work / "lake" / "landing", ignore_errors=True)
    return result


def time_discover(source: SourceConfig) -> float:
    """Wall seconds of the connector's ``discover``, which the first sync of a source runs."""
    start = time.perf_counter()
    discover(connector_executable(source.connector), source.connector_config)
    return time.perf_counter() - start


def bench_landing(count: int = 100_000, repeats: int = 3) -> dict[str, Any]:
    """Raw connector read (a) and sync_batch (b), alternated ``repeats`` times.

    ``landing_overhead_ratio`` is median(b) / median(a): what landing as Parquet adds
    to just running the connector, for a batch whose catalog is stored. To tell the
    parts apart, each round also times ``discover`` alone (paid by a source's first
    batch, and when its connector or config changes) and the read through the
    protocol layer without landing; ``landing_write_seconds`` is what is left of (b)
    after the read, i.e. building Arrow tables and writing Parquet that did not
    overlap the read.
    """
    source = faker_source(count)
    executable = connector_executable(source.connector)
    raw, syncs, discovers, decoded = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="sluice-bench-landing-") as tmp:
        work = Path(tmp)
        config, catalog = write_read_inputs(source, work)
        for _ in range(repeats):
            raw.append(time_raw_read(executable, config, catalog))
            syncs.append(time_sync(source, work))
            discovers.append(time_discover(source))
            decoded.append(time_protocol_read(source, catalog))
    records = syncs[0]["records"]
    if any(run["records"] != records for run in syncs):
        raise BenchmarkError(f"record counts differ between syncs: {syncs}")
    total = sum(records.values())
    raw_s = median(raw)
    sync_s = median([run["seconds"] for run in syncs])
    discover_s, decoded_s = median(discovers), median(decoded)
    return {
        "landing_overhead_ratio": sync_s / raw_s,
        "landing_raw_read_seconds": raw_s,
        "landing_sync_seconds": sync_s,
        "landing_discover_seconds": discover_s,
        "landing_protocol_read_seconds": decoded_s,
        "landing_write_seconds": sync_s - decoded_s,
        "landing_first_batch_ratio": (sync_s + discover_s) / raw_s,
        "landing_raw_read_runs_seconds": raw,
        "landing_sync_runs_seconds": [run["seconds"] for run in syncs],
        "landing_sync_own_cpu_seconds": median([run["own_cpu_seconds"] for run in syncs]),
        "landing_sync_connector_cpu_seconds": median([run["connector_cpu_seconds"] for run in syncs]),
        "landing_records": total,
        "landing_records_per_stream": records,
        "landing_quarantined": syncs[0]["quarantined"],
        "landing_raw_records_per_second": total / raw_s,
        "landing_sync_records_per_second": total / sync_s,
        "landing_faker_count": count,
        "landing_repeats": repeats,
    }
