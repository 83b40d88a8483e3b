"""Registers Sluice with Airflow (shown under Admin > Plugins).

Besides the ``batch_id`` macro: the platform health page and the generated dbt docs,
behind Airflow's login, in the UI's Browse menu. Airflow 3 serves them from a FastAPI app
under ``/sluice``; Airflow 2.11 from Flask AppBuilder views. Every Airflow process imports
this module: the web parts are built only when the API server (or webserver) asks.
"""

from __future__ import annotations

import importlib.util
from functools import cached_property
from typing import Any

from airflow.providers.common.compat.sdk import AirflowPlugin

from sluice.core.batch import batch_id

AIRFLOW_3 = importlib.util.find_spec("airflow.api_fastapi") is not None
URL_PREFIX = "/sluice"


def _api_base_path() -> str:
    """The path of ``[api] base_url`` (the UI's links include it when Airflow is served below a path)."""
    from urllib.parse import urlsplit

    from airflow.configuration import conf

    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


class SluicePlugin(AirflowPlugin):
    name = "sluice"
    macros = [batch_id]

    if AIRFLOW_3:
        external_views = [
            {
                "name": "Platform health",
                "href": f"{_api_base_path()}{URL_PREFIX}/health",
                "url_route": "sluice-health",
                "destination": "nav",
                "category": "browse",
            },
            {
                "name": "dbt docs",
                "href": f"{_api_base_path()}{URL_PREFIX}/dbt-docs/",
                "url_route": "sluice-dbt-docs",
                "destination": "nav",
                "category": "browse",
            },
        ]

        @cached_property
        def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
            from sluice.ui.page import create_app

            return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Sluice platform health"}]

    else:

        @cached_property
        def appbuilder_views(self) -> list[dict[str, Any]]:  # type: ignore[override]
            from sluice.ui.page_airflow2 import appbuilder_views

            return appbuilder_views()
