"""Alerts on Slack, one per incident, kept from open to resolved.

- :mod:`sluice.alerting.callbacks`: the task callbacks every platform DAG gets (light to
  import: DAG parsing loads them)
- :mod:`sluice.alerting.alerts`: ``alert()`` and ``resolve()``, for checks that find a problem
- :mod:`sluice.alerting.incidents`: incident state in the lake, shared by every worker
- :mod:`sluice.alerting.routing`: who is mentioned and which channel, from ``meta``
- :mod:`sluice.alerting.slack`: delivery through the Slack provider's notifiers
"""
