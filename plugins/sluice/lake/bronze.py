"""Commit a landed batch to the bronze Delta table ``bronze/<source>/<stream>``.

The table is partitioned by ``_sluice_batch``. A commit overwrites exactly its batch's
partition in one Delta transaction (``predicate`` overwrite), so it is atomic and a
rerun replaces the batch instead of appending to it. The record key and data-subject key
are declared in the table's configuration, where erasure and readers find them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sluice import config
from sluice.batch import batch_start
from sluice.ingest.landing import landed_files
from sluice.sources import StreamConfig

BATCH_COLUMN = "_sluice_batch"
#: Keeps rewrites (erasure) from collapsing a table into a few huge files.
TARGET_FILE_SIZE = 128 * 1024 * 1024


def bronze_table_path(lake_root: Path, source: str, stream: str) -> Path:
    return lake_root / "bronze" / source / stream


def declared_keys(stream: StreamConfig) -> dict[str, str]:
    """Table properties naming the stream's keys (``sluice.*``)."""
    properties = {"sluice.recordKey": stream.record_key}
    if stream.subject_key:
        properties["sluice.subjectKey"] = stream.subject_key
    if stream.cursor_field:
        properties["sluice.cursorField"] = stream.cursor_field
    return properties


def commit_batch(source: str, stream: StreamConfig, batch: str, lake_root: Path | None = None) -> dict[str, Any]:
    """Replace the batch's partition with its landed files; returns rows and table version."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    from deltalake import DeltaTable, write_deltalake

    batch_start(batch)  # the predicate below embeds it: accept only a well-formed id
    lake_root = lake_root or config.lake_root()
    files = landed_files(lake_root, source, stream.name, batch)
    dataset = ds.dataset([str(f) for f in files], format="parquet")
    schema = dataset.schema.append(pa.field(BATCH_COLUMN, pa.string(), nullable=False))
    rows = 0

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal rows
        for record_batch in dataset.to_batches():
            rows += record_batch.num_rows
            column = pa.array([batch] * record_batch.num_rows, pa.string())
            yield pa.RecordBatch.from_arrays([*record_batch.columns, column], schema=schema)

    path = bronze_table_path(lake_root, source, stream.name)
    exists = DeltaTable.is_deltatable(str(path))
    write_deltalake(
        str(path),
        pa.RecordBatchReader.from_batches(schema, batches()),
        mode="overwrite",
        partition_by=[BATCH_COLUMN],
        predicate=f"{BATCH_COLUMN} = '{batch}'",
        schema_mode="merge" if exists else None,
        name=f"bronze.{source}.{stream.name}",
        configuration=None if exists else {"delta.targetFileSize": str(TARGET_FILE_SIZE)},
        target_file_size=TARGET_FILE_SIZE,
    )
    table = DeltaTable(str(path))
    keys = declared_keys(stream)
    current = table.metadata().configuration
    if any(current.get(name) != value for name, value in keys.items()):
        # the writer accepts only delta.* properties; custom ones go through ALTER
        table.alter.set_table_properties(keys, raise_if_not_exists=False)
    return {"rows": rows, "version": table.version()}
