"""Airflow local settings: Sluice's cluster policy (the plugins folder is on sys.path)."""

from sluice.policy import dag_policy  # noqa: F401
