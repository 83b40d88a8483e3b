"""The platform DAGs' ids, known to the DAG builder that makes them and to the pages that show their runs."""

from __future__ import annotations

TRANSFORM_DAG_ID = "transform"
ERASURE_DAG_ID = "gdpr_erasure"


def ingestion_dag_id(source_name: str) -> str:
    return f"ingest_{source_name}"
