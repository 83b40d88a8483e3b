"""Airflow DAG: GDPR erasure of every pending request, daily and on demand."""

from sluice.dag_builder import erasure_dag

dag = erasure_dag()
