"""The bronze commit every driver's landing goes through, as an Airflow task (landing itself:
:mod:`sluice.ingest.drivers`)."""

from __future__ import annotations

from typing import Any

from sluice.core.stream_operator import StreamBatchOperator


class BronzeCommitOperator(StreamBatchOperator):
    """Commit one landed batch of a stream to its bronze Delta table ``bronze/<source>/<stream>``
    (then its index entries and the drop of erased people: :mod:`sluice.ingest.commit`)."""

    ui_color = "#f5e1c9"

    def execute(self, context: Any) -> dict[str, Any]:
        from sluice.core.sources import load_source
        from sluice.ingest.commit import commit_batch

        stream = load_source(self.source).stream(self.stream)
        result = commit_batch(self.source, stream, self.batch)
        self.log.info(
            "bronze/%s/%s batch %s: %d rows in %d registered file(s) of %d bytes, table version %d;"
            " %d replaced file(s) vacuumed",
            self.source,
            self.stream,
            self.batch,
            result["rows"],
            result["files"],
            result["bytes"],
            result["version"],
            result["vacuumed"],
        )
        return result
