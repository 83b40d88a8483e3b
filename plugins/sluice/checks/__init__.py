"""Checks, each a plain-Python module with its operator in :mod:`sluice.checks.operators`:

- :mod:`sluice.checks.freshness`: bronze tables against their dbt source's freshness SLA
- :mod:`sluice.checks.metrics`: per-batch data-integrity figures of a source, against
  :mod:`sluice.core.thresholds` (declared per stream)
- :mod:`sluice.checks.report`: what happens to the figures: the lake's check results
  (:mod:`sluice.checks.results`), the warehouse's ``ops.batch_metrics``
  (:mod:`sluice.checks.warehouse`), Airflow's metrics (:mod:`sluice.checks.stats`), alerts
"""
