"""Airflow DAG: ingest the sample company's file exports, declared in include/sources/company.yml."""

from sluice.dag_builder import ingestion_dag

dag = ingestion_dag("company")
