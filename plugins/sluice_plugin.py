"""Registers Sluice with Airflow (shown under Admin > Plugins)."""

from airflow.providers.common.compat.sdk import AirflowPlugin

from sluice.batch import batch_id


class SluicePlugin(AirflowPlugin):
    name = "sluice"
    macros = [batch_id]
