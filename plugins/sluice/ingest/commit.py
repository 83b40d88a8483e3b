"""The one pipeline after landing: every driver's published landing enters the lake here.

A driver ends at a landing manifest (:mod:`sluice.ingest.contract`). From there each stream
of the batch goes the same way, whichever driver landed it:

1. its files are registered as the batch's partition of the bronze table, in one
   transaction (:func:`sluice.lake.bronze.register_files`);
2. for a stream that declares identifiers, the subject index gets the batch's entries
   (:func:`sluice.lake.index.index_batch`), and the records of erased people a driver
   could not drop at landing (an Airbyte server writes its own files) are dropped from
   the files that hold them (:func:`sluice.lake.rewrite.drop_suppressed`).

The warehouse load and the checks follow as their own tasks (see :mod:`sluice.dag_builder`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sluice.core import config
from sluice.core.batch import batch_start
from sluice.core.sources import StreamConfig
from sluice.ingest.contract import check_landing
from sluice.ingest.landing import read_manifest
from sluice.lake.bronze import register_files
from sluice.lake.index import index_batch
from sluice.lake.rewrite import drop_suppressed
from sluice.lake.storage import Lake, open_lake

log = logging.getLogger(__name__)


def commit_files(
    lake: Lake,
    source: str,
    stream: StreamConfig,
    batch: str,
    files: Sequence[str],
    landed_rows: int | None = None,
) -> dict[str, Any]:
    """Make ``files`` the batch's partition of the bronze table, then index the batch and
    drop erased people from it.

    :returns: what :func:`~sluice.lake.bronze.register_files` returns (rows, version, files,
        bytes, vacuumed), with ``indexed`` (index entries written) and ``suppressed``
        (records of erased people dropped after the commit)
    """
    result = register_files(lake, source, stream, batch, files, landed_rows)
    paths = result.pop("paths")
    result["indexed"] = result["suppressed"] = 0
    if stream.identifiers:  # the index follows the commit (and is checked against the table before use)
        salt = config.erasure_salt()
        result["indexed"] = index_batch(lake, source, stream, batch, paths, salt)
        dropped = drop_suppressed(lake, source, stream, batch, salt)
        if dropped.rows_removed:
            log.info(
                "%s.%s batch %s: %d record(s) of erased people dropped",
                source,
                stream.name,
                batch,
                dropped.rows_removed,
            )
            result["suppressed"], result["version"] = dropped.rows_removed, dropped.version
    return result


def commit_batch(source: str, stream: StreamConfig, batch: str, lake: Lake | None = None) -> dict[str, Any]:
    """Commit the files of the batch's published landing (its manifest), see :func:`commit_files`."""
    batch_start(batch)
    lake = lake or open_lake()
    manifest = read_manifest(lake, source, stream.name, batch)
    check_landing(manifest)
    files = [lake.path(name) for name in manifest["files"]]
    return commit_files(lake, source, stream, batch, files, landed_rows=manifest["landed"])
