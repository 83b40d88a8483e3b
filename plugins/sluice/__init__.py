"""Sluice: an Airflow distribution for a batch data platform.

Modules here are imported while the DAG folder is parsed, so they only import the
standard library and Airflow at module level; heavy libraries load inside tasks.
"""
