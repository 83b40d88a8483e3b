"""The checks' cost: freshness and per-batch metrics of one batch, against the batch itself.

One batch of every source the embedded stack runs (driver ``local``; faker with
``--faker-count`` users) is landed, committed and loaded into a DuckDB warehouse in a
temporary folder (the batch's wall time), then the checks its DAGs run are timed as the
tasks run them, Airflow aside: the metrics of each source's batch and the freshness of
every dbt source table, each recorded (lake ``ops/check_results``, warehouse
``ops.batch_metrics``) and alerted on (no Slack connection: logged).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from common import BATCH, faker_source


def bench_watch(count: int = 100_000) -> dict[str, Any]:
    """``watch_check_seconds`` and ``watch_overhead_ratio`` (checks / the batch's land + commit + load)."""
    from sluice.checks.freshness import check_freshness, incident_table
    from sluice.checks.metrics import measure_batch
    from sluice.checks.report import report
    from sluice.core.compat import metrics
    from sluice.core.dbt_manifest import load_manifest
    from sluice.core.sources import load_source, source_names
    from sluice.ingest.commit import commit_batch
    from sluice.ingest.local.sync import sync_batch
    from sluice.lake.storage import open_lake
    from sluice.warehouse.duckdb_load import connect, load_batch

    sources = [faker_source(count) if name == "faker" else load_source(name) for name in source_names()]
    sources = [source for source in sources if source.driver == "local"]
    os.environ.pop("AIRFLOW_CONN_SLACK_ALERTS", None)  # alerts go to the log
    with tempfile.TemporaryDirectory(prefix="sluice-bench-watch-") as tmp:
        lake, warehouse = open_lake(str(Path(tmp) / "lake")), Path(tmp) / "warehouse.duckdb"
        start = time.perf_counter()
        for source in sources:
            sync_batch(source, BATCH, lake=lake)
            for stream in source.streams:
                commit_batch(source.name, stream, BATCH, lake)
                load_batch(source.name, stream.name, BATCH, lake, warehouse)
        batch_seconds = time.perf_counter() - start

        manifest = load_manifest()
        metrics()  # a task has Airflow loaded: its import is not the checks' cost
        start = time.perf_counter()
        con = connect(warehouse)
        figures = 0
        for source in sources:
            # a rerun of a past interval, as here, has its landing latency recorded, not judged
            results = measure_batch(lake, source, BATCH, connection=con, compare_timeliness=False, dag_id="bench")
            figures += len(report(results, lake=lake, connection=con).results)
        metrics_seconds = time.perf_counter() - start
        slas, results = check_freshness(manifest, sources, lake=lake, connection=con, dag_id="bench", batch=BATCH)
        figures += len(report(results, lake=lake, connection=con, incident_table=incident_table(slas)).results)
        con.close()
        watch_seconds = time.perf_counter() - start
    return {
        "watch_check_seconds": watch_seconds,
        "watch_overhead_ratio": watch_seconds / batch_seconds,
        "watch_metrics_seconds": metrics_seconds,
        "watch_freshness_seconds": watch_seconds - metrics_seconds,
        "watch_batch_seconds": batch_seconds,
        "watch_figures": figures,
        "watch_sources": [source.name for source in sources],
        "watch_faker_count": count,
    }
