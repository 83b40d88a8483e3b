"""Ingestion: run Airbyte connectors and land their records in the lake."""
