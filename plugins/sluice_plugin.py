"""Registers Sluice with Airflow (shown under Admin > Plugins).

Besides the ``batch_id`` macro: the platform health page and the generated dbt docs,
behind Airflow's login, in the UI's Browse menu. Airflow 3 serves them from a FastAPI app
under ``/sluice``; Airflow 2.11 from Flask AppBuilder views. Every Airflow process imports
this module: the web parts are built only when the API server (or webserver) asks.

Airflow finds the plugin in its plugins folder or, once the ``sluice`` distribution is
installed, through its ``airflow.plugins`` entry point (``entry_point_plugin``).
"""

from __future__ import annotations

import importlib.util
from functools import cached_property
from pathlib import Path
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


def _loaded_from_plugins_folder() -> bool:
    from airflow import settings

    folder = getattr(settings, "PLUGINS_FOLDER", None)
    return bool(folder) and Path(__file__).resolve().parent == Path(folder).resolve()


def __getattr__(name: str) -> Any:
    """``entry_point_plugin``: the plugin class, or None when this module came from the
    plugins folder. Airflow loads that folder before entry points and keeps the first
    plugin of a name; the second is skipped and listed as a plugin import error, so the
    entry point steps aside instead (Airflow ignores an entry point that is not a plugin)."""
    if name == "entry_point_plugin":
        return None if _loaded_from_plugins_folder() else SluicePlugin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
