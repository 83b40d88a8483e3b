"""Watching the platform: alerts on Slack, one per incident, kept from open to resolved.

- :mod:`sluice.watch.callbacks`: the task callbacks every platform DAG gets (light to
  import: DAG parsing loads them)
- :mod:`sluice.watch.alerts`: ``alert()`` and ``resolve()``, for checks that find a problem
- :mod:`sluice.watch.incidents`: incident state in the lake, shared by every worker
- :mod:`sluice.watch.routing`: who is mentioned and which channel, from ``meta``
- :mod:`sluice.watch.slack`: delivery through the Slack provider's notifiers
"""
