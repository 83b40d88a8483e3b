"""Watching the platform: alerts on Slack, one per incident, kept from open to resolved.

- :mod:`sluice.watch.callbacks`: the task callbacks every platform DAG gets (light to
  import: DAG parsing loads them)
- :mod:`sluice.watch.alerts`: ``alert()`` and ``resolve()``, for checks that find a problem
- :mod:`sluice.watch.incidents`: incident state in the lake, shared by every worker
- :mod:`sluice.watch.routing`: who is mentioned and which channel, from ``meta``
- :mod:`sluice.watch.slack`: delivery through the Slack provider's notifiers

Checks, each a plain-Python module with its operator in :mod:`sluice.watch.operators`:

- :mod:`sluice.watch.freshness`: bronze tables against their dbt source's freshness SLA
- :mod:`sluice.watch.metrics`: per-batch data-integrity figures of a source, against
  :mod:`sluice.watch.thresholds` (declared per stream)
- :mod:`sluice.watch.accuracy`: totals that must agree across layers (dbt model ``meta``)
- :mod:`sluice.watch.checks`: what happens to the figures: the lake's check results
  (:mod:`sluice.watch.results`), the warehouse's ``ops.batch_metrics``
  (:mod:`sluice.watch.warehouse`), Airflow's metrics (:mod:`sluice.watch.stats`), alerts
"""
