"""Bytes the lake writes per byte landed: landing plus bronze commit of one batch."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from common import BATCH, faker_source

from sluice.ingest.commit import commit_batch
from sluice.ingest.landing import landed_files
from sluice.ingest.local.sync import sync_batch
from sluice.lake.storage import open_lake


def file_states(root: Path) -> dict[Path, tuple[int, int, int]]:
    """Every file under ``root``: (size, modification time, inode)."""
    states = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            states[path] = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
    return states


def _process_written_bytes() -> int:
    """Bytes this process has passed to write() so far (all threads), from /proc."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def bench_lake_bytes(count: int = 100_000) -> dict[str, Any]:
    """Landing and bronze commit of one faker batch into an empty lake, in this process.

    Bytes written: the sizes of every file under the lake root that is new or changed
    afterwards (files written and removed in between, such as temporary ones, do not
    count). Landed bytes: the Parquet files ``landed_files`` names for the batch.
    """
    source = faker_source(count)
    with tempfile.TemporaryDirectory(prefix="sluice-bench-lake-") as tmp:
        root = Path(tmp) / "lake"
        root.mkdir()
        lake = open_lake(str(root))
        before = file_states(root)
        wchar = _process_written_bytes()
        manifests = sync_batch(source, BATCH, lake=lake)
        for stream in source.streams:
            commit_batch(source.name, stream, BATCH, lake)
        wchar = _process_written_bytes() - wchar
        after = file_states(root)
        written: dict[str, int] = {}
        for path, state in after.items():
            if before.get(path) != state:
                area = path.relative_to(root).parts[0]
                written[area] = written.get(area, 0) + state[0]
        landed = {
            stream.name: sum(lake.size(f) for f in landed_files(lake, source.name, stream.name, BATCH))
            for stream in source.streams
        }
    landed_total, written_total = sum(landed.values()), sum(written.values())
    return {
        "lake_bytes_written_per_landed_byte": written_total / landed_total,
        "lake_bytes_written": written_total,
        "lake_bytes_written_by_area": dict(sorted(written.items())),
        "lake_landed_bytes": landed_total,
        "lake_landed_bytes_per_stream": landed,
        "lake_process_wchar_bytes": wchar,
        "lake_records": sum(manifest["read"] for manifest in manifests.values()),
        "lake_faker_count": count,
    }
