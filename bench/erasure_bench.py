"""Erasure through the subject index against a full rewrite of the table, same run.

A bronze table of ``rows`` rows in ``files`` batches (one file each), subjects spread as
real ones are: each person's rows in two consecutive batches. Each batch is committed
(``register_files``) and indexed (``index_batch``) separately, to time the index against
the commit it follows. Then 10 and 1,000 people are erased (``erase_from_table``: index
lookup, the files holding them rewritten, one commit), and the whole table is rewritten
once by deltalake, as an erasure without an index would have to.
"""

from __future__ import annotations

import posixpath
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from common import median

from sluice.core.batch import batch_id
from sluice.core.sources import StreamConfig

SALT = b"bench-salt"
STREAM = StreamConfig(
    "people",
    record_key="row_id",
    subject_key="user_id",
    identifiers=(("email", "email"), ("user_id", "user_id")),
    pii=("email", "name"),
)
SPAN = 2  # batches each person's rows are in


def _batch_table(number: int, rows: int) -> pa.Table:
    ids = pa.array(range((number // SPAN) * rows, (number // SPAN) * rows + rows), pa.int64())
    text = pc.cast(ids, pa.string())
    return pa.table(
        {
            "row_id": pa.array(range(number * rows, (number + 1) * rows), pa.int64()),
            "user_id": ids,
            "email": pc.binary_join_element_wise("person", text, "@example.com", ""),
            "name": pc.binary_join_element_wise("Name ", text, ""),
            "amount": pc.multiply(pc.cast(ids, pa.float64()), 0.01),
        }
    )


def _folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def bench_erasure(rows: int = 10_000_000, files: int = 100) -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    from deltalake import write_deltalake

    from sluice.lake.bronze import register_files
    from sluice.lake.files import batch_folder, bronze_table_path
    from sluice.lake.index import files_holding, identifier_hashes, index_batch
    from sluice.lake.rewrite import erase_from_table
    from sluice.lake.storage import open_lake

    per_file = rows // files
    plain = StreamConfig(STREAM.name, record_key=STREAM.record_key)  # commits without the index
    with tempfile.TemporaryDirectory(prefix="sluice-bench-erasure-") as tmp:
        lake = open_lake(str(Path(tmp) / "lake"))
        table_path = bronze_table_path(lake, "bench", "people")
        commits, indexes, batches = [], [], []
        start = datetime(2026, 1, 1, tzinfo=UTC)
        for number in range(files):
            batch = batch_id(start + timedelta(hours=6 * number))
            path = f"{batch_folder(table_path, batch)}/part-0.parquet"
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            began = time.perf_counter()
            pq.write_table(_batch_table(number, per_file), path, compression="zstd")
            written = time.perf_counter()
            register_files(lake, "bench", plain, batch, [path], landed_rows=per_file)
            committed = time.perf_counter()
            index_batch(lake, "bench", STREAM, batch, [posixpath.relpath(path, table_path)], SALT)
            commits.append(committed - written)
            batches.append(committed - began)
            indexes.append(time.perf_counter() - committed)
        index_mb = _folder_mb(Path(tmp) / "lake" / "index")

        started = time.perf_counter()
        full = lake.delta_table(table_path).to_pyarrow_dataset().scanner().to_reader()
        write_deltalake(str(Path(tmp) / "rewritten"), full, partition_by=["_sluice_batch"])
        full_seconds = time.perf_counter() - started
        shutil.rmtree(Path(tmp) / "rewritten")

        people = random.Random(7).sample(range(rows // SPAN), 1010)
        results = {}
        for label, chosen in (("10", people[:10]), ("1000", people[10:])):
            identifiers = {"user_id": [str(i) for i in chosen]}
            holding = len(files_holding(lake, "bench", "people", identifier_hashes(identifiers, SALT)))
            began = time.perf_counter()
            erased = erase_from_table(lake, "bench", STREAM, identifiers, SALT)
            seconds = time.perf_counter() - began
            if erased.rows_removed != SPAN * len(chosen):
                raise RuntimeError(f"erased {erased.rows_removed} rows of {SPAN * len(chosen)}")
            results[label] = (seconds, holding, erased.files_rewritten)
    commit, index = median(commits), median(indexes)
    return {
        "erasure_table_rows": rows,
        "erasure_table_files": files,
        "erasure_full_rewrite_seconds": round(full_seconds, 2),
        "erasure_10_seconds": round(results["10"][0], 2),
        "erasure_10_files_holding": results["10"][1],
        "erasure_10_files_rewritten": results["10"][2],
        "erasure_10_ratio": round(results["10"][0] / full_seconds, 3),
        "erasure_1000_seconds": round(results["1000"][0], 2),
        "erasure_1000_files_holding": results["1000"][1],
        "erasure_1000_files_rewritten": results["1000"][2],
        "erasure_1000_ratio": round(results["1000"][0] / full_seconds, 3),
        "erasure_index_mb": round(index_mb, 1),
        "erasure_commit_seconds": round(commit, 3),
        "erasure_index_update_seconds": round(index, 3),
        "erasure_index_update_ratio": round(index / commit, 2),
        # the same index time against writing the batch's file and committing it
        "erasure_batch_write_and_commit_seconds": round(median(batches), 3),
        "erasure_index_vs_batch_write_ratio": round(index / median(batches), 2),
    }
