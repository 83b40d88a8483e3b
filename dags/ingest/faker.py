"""Airflow DAG: ingest the faker demo source, declared in include/sources/faker.yml."""

from sluice.dag_builder import ingestion_dag

dag = ingestion_dag("faker")
