"""The platform health page and the dbt docs on Airflow 2.11: Flask AppBuilder views.

The same page and files as on Airflow 3 (:mod:`sluice.ui.page`), behind the webserver's
login through Airflow's ``has_access_dag``: a visitor who is not logged in is sent to the
login page, one without read access to DAG runs is refused.
"""

from __future__ import annotations

from typing import Any

from airflow.auth.managers.models.resource_details import DagAccessEntity
from airflow.www.auth import has_access_dag
from flask import Response, abort, send_file, url_for
from flask_appbuilder import BaseView, expose

from sluice.ui.page import DOCS_CSP, DOCS_FILES, DocsNotGenerated, docs_file, render


class SluiceHealthView(BaseView):
    route_base = "/sluice"
    default_view = "health"

    @expose("/health")
    @has_access_dag("GET", DagAccessEntity.RUN)
    def health(self) -> Any:
        from sluice.ui.health import gather

        return render(gather(), docs_href=url_for("SluiceDbtDocsView.index"))


class SluiceDbtDocsView(BaseView):
    route_base = "/sluice/dbt-docs"
    default_view = "index"

    @expose("/")
    @has_access_dag("GET")
    def index(self) -> Any:
        return self._file("index.html")

    @expose("/<name>")
    @has_access_dag("GET")
    def file(self, name: str) -> Any:
        return self._file(name)

    @staticmethod
    def _file(name: str) -> Any:
        try:
            path = docs_file(name)
        except DocsNotGenerated as missing:
            if name in DOCS_FILES:
                return Response(str(missing), status=404, mimetype="text/plain")
            abort(404)
        response = send_file(path, mimetype=DOCS_FILES[name].split(";")[0])
        response.headers["Content-Security-Policy"] = DOCS_CSP
        response.headers["Cache-Control"] = "no-cache"
        return response


def appbuilder_views() -> list[dict[str, Any]]:
    return [
        {"name": "Platform health", "category": "Browse", "view": SluiceHealthView()},
        {"name": "dbt docs", "category": "Browse", "view": SluiceDbtDocsView()},
    ]
