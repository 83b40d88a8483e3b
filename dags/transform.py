"""Airflow DAG: the dbt project's layers for every 6-hour batch, rendered by Cosmos."""

from sluice.dag_builder import transform_dag

dag = transform_dag()
