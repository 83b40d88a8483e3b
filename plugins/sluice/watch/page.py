"""The platform health page and the dbt docs, behind Airflow's login.

:func:`render` turns :class:`~sluice.watch.health.Health` into one HTML page (every value
escaped); :func:`docs_file` finds a file of the generated dbt docs. Both are shared by
the Airflow 3 app here (:func:`create_app`, mounted by the plugin under ``/sluice``) and
the Airflow 2.11 views (:mod:`sluice.watch.page_airflow2`).

Plugin FastAPI apps are not behind Airflow's login by themselves: every route here
depends on Airflow's own authorisation (``requires_access_dag``), which reads the UI's
``_token`` cookie or an ``Authorization: Bearer`` token. A browser that is not logged in
is sent to the login page; any other client gets 401.
"""

# no postponed annotations: FastAPI reads the routes' parameter types (imported in create_app)
import html
import math
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sluice.watch.health import DagHealth, Health, Run

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
    from sluice import config

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
        from sluice.watch.health import gather

        prefix = request.scope.get("root_path", "")
        return HTMLResponse(render(gather(), docs_href=prefix + DOCS_PATH))

    @app.get(HEALTH_PATH + ".json", dependencies=read_runs)
    def health_json() -> JSONResponse:
        from sluice.watch.health import gather

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
                return HTMLResponse(_page("dbt docs", f"<p class='problem'>{_e(missing)}</p>"), status_code=404)
            raise HTTPException(404, str(missing)) from None
        headers = {"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"}
        return FileResponse(path, media_type=DOCS_FILES[name], headers=headers)

    return app


# -- the HTML


def render(health: Health, docs_href: str | None = None) -> str:
    """The health page: every value escaped, links to the DAG runs in the Airflow UI."""
    parts = [f"<p class='when'>Figures as of {_time(health.generated_at)}."]
    if docs_href:
        parts.append(f" <a href='{_e(docs_href)}'>dbt docs</a>")
    parts.append("</p>")
    parts += [f"<p class='problem'>{_e(problem)}</p>" for problem in health.problems]
    parts.append(_sources(health.sources))
    parts.append(_rows(health.sources))
    parts.append(_dags(health.dags))
    parts.append(_freshness(health))
    parts.append(_breaches(health))
    parts.append(_incidents(health))
    parts.append(_erasures(health))
    return _page("Platform health", "".join(parts))


def _sources(sources: list[DagHealth]) -> str:
    rows = []
    for dag in sources:
        success, latest = dag.last_success, dag.latest
        rows.append(
            [
                _e(dag.source),
                _run_link(success, success.batch) if success else "<span class='none'>no successful batch yet</span>",
                _time(success.end_date) if success else "",
                _latest(latest, success),
            ]
        )
    return _table(
        "Last successful batch per source",
        ["Source", "Batch", "Finished", "Latest run"],
        rows,
        "No source is declared.",
        section="sources",
    )


def _rows(sources: list[DagHealth]) -> str:
    rows = []
    for dag in sources:
        run = dag.last_success
        for stream in run.streams if run else ():
            rows.append(
                [
                    _e(dag.source),
                    _e(stream.stream),
                    _e(run.batch),
                    _count(stream.read),
                    _count(stream.landed),
                    _count(stream.quarantined),
                    _count(stream.loaded),
                ]
            )
    return _table(
        "Rows in each source's last successful batch",
        ["Source", "Stream", "Batch", "Read", "Landed", "Quarantined", "Loaded into the warehouse"],
        rows,
        "No successful batch has reported its rows yet.",
        section="rows",
        numeric=(3, 4, 5, 6),
    )


def _dags(dags: list[DagHealth]) -> str:
    rows = [
        [
            _e(dag.dag_id),
            _run_link(dag.last_success, dag.last_success.batch or dag.last_success.run_id)
            if dag.last_success
            else "<span class='none'>none yet</span>",
            _time(dag.last_success.end_date) if dag.last_success else "",
            _latest(dag.latest, dag.last_success),
        ]
        for dag in dags
    ]
    return _table("Transform and erasure", ["DAG", "Last success", "Finished", "Latest run"], rows, "", section="dags")


def _freshness(health: Health) -> str:
    rows = [
        [
            _e(r.table_name),
            _e(r.source or ""),
            _value(r.metric, r.value),
            _value(r.metric, r.threshold),
            _status(r.status),
            _e(r.batch),
            _time(r.checked_at),
        ]
        for r in health.freshness
    ]
    return _table(
        "Freshness per table",
        ["Table", "Source", "Lag", "Threshold", "Status", "Batch", "Checked"],
        rows,
        "No freshness check has run yet.",
        section="freshness",
    )


def _breaches(health: Health) -> str:
    rows = [
        [
            _status(r.status),
            _e(r.table_name),
            _e(r.check),
            _e(r.metric),
            _value(r.metric, r.value),
            _value(r.metric, r.threshold),
            _e(r.detail),
            _e(r.batch),
            _time(r.checked_at),
        ]
        for r in health.breaches
    ]
    return _table(
        "Open quality breaches",
        ["Status", "Table", "Check", "Metric", "Value", "Threshold", "Detail", "Batch", "Checked"],
        rows,
        "None: every check's latest result passed.",
        section="breaches",
    )


def _incidents(health: Health) -> str:
    rows = []
    for incident in health.incidents:
        where = ".".join(part for part in (incident.dag_id, incident.task_id) if part)
        link = _ui_link(incident.log_url)
        where = f"<a href='{_e(link)}' target='_top'>{_e(where or 'log')}</a>" if link else _e(where)
        rows.append(
            [
                _e(incident.title),
                _e(incident.kind),
                _e(incident.what),
                where,
                _time(incident.opened_at),
                _count(incident.occurrences),
                _time(incident.last_seen_at),
            ]
        )
    return _table(
        "Open incidents",
        ["Incident", "Kind", "What", "Where", "Opened", "Seen", "Last seen"],
        rows,
        "None open.",
        section="incidents",
    )


def _erasures(health: Health) -> str:
    rows = [
        [
            _e(request.request_id),
            f"<span class='state {_e(request.state)}'>{_e(request.state.replace('_', ' '))}</span>",
            _time(request.received_at),
            _time(request.updated_at),
            _e(", ".join(step.replace("_", " ") for step, _ in request.steps)),
        ]
        for request in health.erasures
    ]
    note = ""
    if health.erasures_finished > sum(1 for request in health.erasures if request.finished):
        note = f"<p class='note'>The latest finished requests of {health.erasures_finished} are listed.</p>"
    return (
        _table(
            "Erasure requests",
            ["Request", "State", "Received", "Last change", "Steps done"],
            rows,
            "No erasure request yet.",
            section="erasures",
        )
        + note
    )


def _latest(latest: Run | None, success: Run | None) -> str:
    if latest is None:
        return "<span class='none'>never run</span>"
    if latest is success:
        return _status(latest.state)
    return f"{_status(latest.state)} {_run_link(latest, latest.batch or latest.run_id)}"


def _ui_link(url: str | None) -> str | None:
    """A link into the Airflow UI, as a path when it points at the UI's own base URL (which
    the alerts use, and which may name another host than the one serving this page)."""
    from urllib.parse import urlsplit

    from sluice.watch.alerts import ui_base_url

    if not url or not url.startswith(("http://", "https://", "/")):
        return None
    base = ui_base_url()
    if base and url.startswith(base + "/"):
        return urlsplit(base).path + url[len(base) :]
    return url


def _run_link(run: Run, text: str | None) -> str:
    return f"<a href='{_e(run.link)}' target='_top' title='{_e(run.run_id)}'>{_e(text or run.run_id)}</a>"


def _status(status: str) -> str:
    return f"<span class='status {_e(status)}'>{_e(status)}</span>"


def _table(
    title: str,
    headers: list[str],
    rows: list[list[str]],
    empty: str,
    *,
    section: str,
    numeric: Iterable[int] = (),
) -> str:
    numeric = set(numeric)
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    cells = ("".join(f"<td{' class=num' if i in numeric else ''}>{c}</td>" for i, c in enumerate(row)) for row in rows)
    body = "".join(f"<tr>{row}</tr>" for row in cells)
    if not rows:
        body = f"<tr><td colspan='{len(headers)}' class='none'>{_e(empty)}</td></tr>"
    return f"<section id='{section}'><h2>{_e(title)}</h2><table><tr>{head}</tr>{body}</table></section>"


def _page(title: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sluice: {_e(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.2rem 1.5rem;
  color: #1a202c; background: #fff; font-size: 14px; }}
h1 {{ font-size: 1.4rem; margin: 0 0 .3rem; }}
h2 {{ font-size: 1.05rem; margin: 1.4rem 0 .4rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #e2e8f0; vertical-align: top; }}
th {{ background: #f7fafc; font-weight: 600; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
a {{ color: #0b6bcb; }}
.when, .note {{ color: #4a5568; }}
.none {{ color: #718096; font-style: italic; }}
.problem {{ background: #fff5f5; border-left: 4px solid #e53e3e; padding: .4rem .7rem; }}
.status, .state {{ display: inline-block; padding: 0 .45rem; border-radius: .6rem; font-size: .85em;
  background: #edf2f7; }}
.status.success, .status.pass, .state.done {{ background: #c6f6d5; color: #22543d; }}
.status.failed, .status.error, .state.verification_failed, .state.rejected {{ background: #fed7d7; color: #822727; }}
.status.warn, .status.running, .status.queued, .state.purge_pending {{ background: #fefcbf; color: #744210; }}
</style></head>
<body><h1>Sluice: {_e(title)}</h1>{body}</body></html>
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    from sluice.watch.messages import utc_text

    return f"<time datetime='{_e(moment.isoformat())}'>{_e(utc_text(moment))}</time>"


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _value(metric: str, value: float | None) -> str:
    """A figure as people read it: seconds as a duration, whole numbers without decimals."""
    if value is None:
        return ""
    if not math.isfinite(value):
        return _e(value)
    if metric.endswith("_seconds"):
        return f"<span title='{value:g} s'>{_e(_duration(value))}</span>"
    if value == int(value):
        return f"{int(value):,}"
    return _e(f"{value:.4g}")


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
