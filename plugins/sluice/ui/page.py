"""The platform health page and the dbt docs, behind Airflow's login.

:func:`render` turns :class:`~sluice.ui.health.Health` into one HTML page (the Jinja2
templates beside this module, autoescaped); :func:`docs_file` finds a file of the generated dbt docs. Both are shared by
the Airflow 3 app here (:func:`create_app`, mounted by the plugin under ``/sluice``) and
the Airflow 2.11 views (:mod:`sluice.ui.page_airflow2`).

Plugin FastAPI apps are not behind Airflow's login by themselves: every route here
depends on Airflow's own authorisation (``requires_access_dag``), which reads the UI's
``_token`` cookie or an ``Authorization: Bearer`` token. A browser that is not logged in
is sent to the login page; any other client gets 401.
"""

# no postponed annotations: FastAPI reads the routes' parameter types (imported in create_app)
import functools
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from sluice.checks.results import CheckResult
from sluice.ui.health import Health, Run

#: What the dbt docs folder may serve: ``dbt docs generate`` writes more (compiled SQL,
#: run results, the parse cache) that the docs page does not need.
DOCS_FILES = {
    "index.html": "text/html; charset=utf-8",
    "manifest.json": "application/json",
    "catalog.json": "application/json",
}
#: Framed only by the Airflow UI; the docs' scripts fetch only their own JSON files.
DOCS_CSP = "frame-ancestors 'self'; connect-src 'self'"
HEALTH_PATH, DOCS_PATH = "/health", "/dbt-docs/"


class DocsNotGenerated(FileNotFoundError):
    """The dbt docs folder has no such file (``make dbt-docs`` makes them)."""


def docs_file(name: str, folder: Path | None = None) -> Path:
    """The path of ``name`` (one of :data:`DOCS_FILES`) in the dbt docs folder."""
    from sluice.core import config

    if name not in DOCS_FILES:
        raise DocsNotGenerated(f"{name!r} is not part of the dbt docs")
    path = (folder or config.dbt_docs_dir()) / name
    if not path.is_file():
        raise DocsNotGenerated(
            f"the dbt docs have not been generated: no {path} (run `make dbt-docs`, or set SLUICE_DBT_DOCS_DIR)"
        )
    return path


def create_app() -> Any:
    """The Airflow 3 app of the page and the docs (mounted under ``/sluice``)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

    app = FastAPI(title="Sluice", docs_url=None, redoc_url=None, openapi_url=None)
    # the page lists DAG runs; the docs describe the transform DAG's models
    read_runs = [Depends(requires_access_dag("GET", DagAccessEntity.RUN))]
    read_dags = [Depends(requires_access_dag("GET"))]

    @app.exception_handler(HTTPException)
    async def login_first(request: Request, error: HTTPException) -> Any:
        """A browser that is not logged in goes to the login page and comes back."""
        if error.status_code == 401 and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
        return await http_exception_handler(request, error)

    @app.get(HEALTH_PATH, response_class=HTMLResponse, dependencies=read_runs)
    def health_page(request: Request) -> HTMLResponse:
        from sluice.ui.health import gather

        prefix = request.scope.get("root_path", "")
        return HTMLResponse(render(gather(), docs_href=prefix + DOCS_PATH))

    @app.get(HEALTH_PATH + ".json", dependencies=read_runs)
    def health_json() -> JSONResponse:
        from sluice.ui.health import gather

        return JSONResponse(gather().to_json())

    @app.get(DOCS_PATH, dependencies=read_dags)
    def docs_index() -> Any:
        return _docs_response("index.html")

    @app.get(DOCS_PATH + "{name}", dependencies=read_dags)
    def docs_part(name: str) -> Any:
        return _docs_response(name)

    def _docs_response(name: str) -> Any:
        try:
            path = docs_file(name)
        except DocsNotGenerated as missing:
            if name == "index.html":
                page = _render("docs_missing.html", title="dbt docs", problem=str(missing))
                return HTMLResponse(page, status_code=404)
            raise HTTPException(404, str(missing)) from None
        headers = {"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"}
        return FileResponse(path, media_type=DOCS_FILES[name], headers=headers)

    return app


# -- the HTML: templates/*.html (Jinja2, autoescaped) lay out plain values prepared here

TEMPLATES = Path(__file__).parent / "templates"


def render(health: Health, docs_href: str | None = None) -> str:
    """The health page: every value escaped, links to the DAG runs in the Airflow UI."""
    listed = sum(1 for request in health.erasures if request.finished)
    return _render(
        "health.html",
        title="Platform health",
        generated_at=_time(health.generated_at),
        docs_href=docs_href,
        problems=health.problems,
        sources=[
            {
                "source": dag.source,
                "batch": _run(dag.last_success, dag.last_success.batch) if dag.last_success else None,
                "finished": _time(dag.last_success.end_date) if dag.last_success else None,
                "latest": _latest(dag.latest, dag.last_success),
            }
            for dag in health.sources
        ],
        rows=[
            {
                "source": dag.source,
                "stream": stream.stream,
                "batch": dag.last_success.batch,
                "read": _count(stream.read),
                "landed": _count(stream.landed),
                "quarantined": _count(stream.quarantined),
                "loaded": _count(stream.loaded),
            }
            for dag in health.sources
            for stream in (dag.last_success.streams if dag.last_success else ())
        ],
        dags=[
            {
                "dag_id": dag.dag_id,
                "success": _run(dag.last_success, dag.last_success.batch or dag.last_success.run_id)
                if dag.last_success
                else None,
                "finished": _time(dag.last_success.end_date) if dag.last_success else None,
                "latest": _latest(dag.latest, dag.last_success),
            }
            for dag in health.dags
        ],
        freshness=[_result(result) for result in health.freshness],
        breaches=[_result(result) for result in health.breaches],
        incidents=[
            {
                "title": incident.title,
                "kind": incident.kind,
                "what": incident.what,
                "where": ".".join(part for part in (incident.dag_id, incident.task_id) if part),
                "link": _ui_link(incident.log_url),
                "opened_at": _time(incident.opened_at),
                "occurrences": _count(incident.occurrences),
                "last_seen_at": _time(incident.last_seen_at),
            }
            for incident in health.incidents
        ],
        erasures=[
            {
                "request_id": request.request_id,
                "state": request.state,
                "state_text": request.state.replace("_", " "),
                "received_at": _time(request.received_at),
                "updated_at": _time(request.updated_at),
                "steps": ", ".join(step.replace("_", " ") for step, _ in request.steps),
            }
            for request in health.erasures
        ],
        # only when the finished requests listed are the latest few of more
        erasures_finished=health.erasures_finished if health.erasures_finished > listed else None,
    )


def _render(template: str, **values: Any) -> str:
    return _templates().get_template(template).render(**values)


@functools.cache
def _templates() -> Any:
    import jinja2  # not at import: every Airflow process imports the plugin

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=lambda value: "" if value is None else value,
    )


def _result(result: CheckResult) -> dict[str, Any]:
    return {
        "status": result.status,
        "table_name": result.table_name,
        "source": result.source,
        "check": result.check,
        "metric": result.metric,
        "value": _value(result.metric, result.value),
        "threshold": _value(result.metric, result.threshold),
        "detail": result.detail,
        "batch": result.batch,
        "checked_at": _time(result.checked_at),
    }


def _latest(latest: Run | None, success: Run | None) -> dict[str, Any] | None:
    """The latest run's state, with a link unless it is the last success (linked already)."""
    if latest is None:
        return None
    return {"state": latest.state, "link": None if latest is success else _run(latest, latest.batch or latest.run_id)}


def _ui_link(url: str | None) -> str | None:
    """A link into the Airflow UI, as a path when it points at the UI's own base URL (which
    the alerts use, and which may name another host than the one serving this page)."""
    from urllib.parse import urlsplit

    from sluice.core.compat import ui_base_url

    if not url or not url.startswith(("http://", "https://", "/")):
        return None
    base = ui_base_url()
    if base and url.startswith(base + "/"):
        return urlsplit(base).path + url[len(base) :]
    return url


def _run(run: Run, text: str | None) -> dict[str, str]:
    return {"href": run.link, "title": run.run_id, "text": text or run.run_id}


def _time(moment: datetime | None) -> dict[str, str] | None:
    if moment is None:
        return None
    from sluice.alerting.messages import utc_text

    return {"iso": moment.isoformat(), "text": utc_text(moment)}


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _value(metric: str, value: float | None) -> dict[str, str | None]:
    """A figure as people read it: seconds as a duration (exact in its title), whole numbers
    without decimals."""
    if value is None:
        return {"text": "", "title": None}
    if not math.isfinite(value):
        return {"text": str(value), "title": None}
    if metric.endswith("_seconds"):
        return {"text": _duration(value), "title": f"{value:g} s"}
    if value == int(value):
        return {"text": f"{int(value):,}", "title": None}
    return {"text": f"{value:.4g}", "title": None}


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days} d {hours} h" if hours else f"{sign}{days} d"
    if hours:
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    if minutes:
        return f"{sign}{minutes} min"
    return f"{sign}{secs} s"
