"""The figures of the platform health page, gathered as plain Python (no web framework).

Everything comes from Airflow's metadata database and from lake tables; nothing opens the
embedded DuckDB file, which takes one writer process at a time while batches run:

- per source, the last successful and the latest run of its ingestion DAG, with the row
  counts its tasks returned (the ``land`` task: read, landed, quarantined per stream; each
  ``<stream>.load`` task: rows loaded into the warehouse);
- the latest runs of the transform and erasure DAGs;
- freshness per table and open breaches, from the check results (``ops/check_results``);
- open incidents (``ops/incidents``);
- erasure requests by id and state, from the requests table (only its ``request_id`` and
  ``received_at`` columns are read) and the audit: never an identifier.

A section that cannot be read is reported in :attr:`Health.problems` and the others are
still shown.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sluice.alerting.incidents import Incident
from sluice.checks.results import ERROR, WARN, CheckResult
from sluice.core.times import as_utc
from sluice.lake.storage import Lake

log = logging.getLogger(__name__)

#: Finished erasure requests listed (every open one is listed).
FINISHED_ERASURES_SHOWN = 20
#: The erasure steps in the order a request goes through them (sluice.erasure.run).
ERASURE_STEPS = ("resolved", "erased_warehouse", "erased_lake", "purged", "verified", "done")
SUCCESS = "success"
T = TypeVar("T")


@dataclass(frozen=True)
class StreamRows:
    """Rows of one stream in one batch (None where the run's tasks did not say)."""

    stream: str
    read: int | None = None
    landed: int | None = None
    quarantined: int | None = None
    loaded: int | None = None


@dataclass(frozen=True)
class Run:
    """One DAG run, as the page shows it.

    :param batch: the batch id of its data interval's start (None without an interval)
    :param link: the run's page in the Airflow UI, as a path on the UI's host
    :param streams: row counts per stream (ingestion DAGs' successful runs only)
    """

    dag_id: str
    run_id: str
    state: str
    batch: str | None
    interval_start: datetime | None
    interval_end: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    link: str
    streams: tuple[StreamRows, ...] = ()


@dataclass(frozen=True)
class DagHealth:
    """A DAG's last successful run and its latest run (the same run when the latest succeeded).

    :param source: the source the DAG ingests (None for the transform and erasure DAGs)
    """

    dag_id: str
    source: str | None
    last_success: Run | None
    latest: Run | None


@dataclass(frozen=True)
class ErasureState:
    """Where an erasure request is, by id only.

    :param state: ``received`` (waiting for the erasure DAG), ``resolved``, ``erased_warehouse``,
        ``erased_lake``, ``purge_pending`` (waiting for the retention), ``purged``,
        ``verification_failed``, ``done`` or ``rejected``
    :param steps: each completed step and when
    """

    request_id: str
    state: str
    received_at: datetime | None
    updated_at: datetime | None
    steps: tuple[tuple[str, datetime], ...] = ()

    @property
    def finished(self) -> bool:
        return self.state in ("done", "rejected")


@dataclass
class Health:
    generated_at: datetime
    sources: list[DagHealth] = field(default_factory=list)
    dags: list[DagHealth] = field(default_factory=list)
    freshness: list[CheckResult] = field(default_factory=list)
    breaches: list[CheckResult] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    erasures: list[ErasureState] = field(default_factory=list)
    erasures_finished: int = 0
    #: sections that could not be read, one sentence each
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The figures as JSON-ready values (times as ISO strings)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=_json_value))


def gather(lake: Lake | None = None, session: Any = None, now: datetime | None = None) -> Health:
    """Every figure of the page.

    :param lake: the platform's lake (default: :func:`sluice.lake.storage.open_lake`)
    :param session: a SQLAlchemy session on Airflow's metadata database (default: a new one)
    """
    health = Health(generated_at=now or datetime.now(UTC))
    if lake is None:
        from sluice.lake.storage import open_lake

        lake = _section(health, "the lake", open_lake, None)
    if session is None:
        from airflow.utils.session import create_session

        with create_session() as new_session:
            _runs(health, new_session)
    else:
        _runs(health, session)
    if lake is not None:
        _checks(health, lake)
        health.incidents = _section(health, "open incidents", lambda: _open_incidents(lake), [])
        erasures = _section(health, "erasure requests", lambda: erasure_states(lake), [])
        opened = [e for e in erasures if not e.finished]
        finished = [e for e in erasures if e.finished]
        health.erasures = opened + finished[:FINISHED_ERASURES_SHOWN]
        health.erasures_finished = len(finished)
    return health


def _section(health: Health, what: str, read: Callable[[], T], default: T) -> T:
    try:
        return read()
    except Exception as error:
        log.exception("health page: could not read %s", what)
        health.problems.append(f"Could not read {what}: {type(error).__name__}: {error}")
        return default


def _runs(health: Health, session: Any) -> None:
    from sluice.core.dag_ids import ERASURE_DAG_ID, TRANSFORM_DAG_ID, ingestion_dag_id
    from sluice.core.sources import load_source, source_names

    names = _section(health, "the source declarations", source_names, [])
    for name in names:
        source = _section(health, f"source {name!r}", lambda name=name: load_source(name), None)
        if source is not None:
            dag_id = ingestion_dag_id(source.name)

            def read(dag_id: str = dag_id, name: str = source.name) -> DagHealth:
                return dag_health(session, dag_id, name)

            found = _section(health, f"the runs of {dag_id}", read, None)
            health.sources.append(found or DagHealth(dag_id, source.name, None, None))
    for dag_id in (TRANSFORM_DAG_ID, ERASURE_DAG_ID):
        found = _section(health, f"the runs of {dag_id}", lambda dag_id=dag_id: dag_health(session, dag_id), None)
        health.dags.append(found or DagHealth(dag_id, None, None, None))


def dag_health(session: Any, dag_id: str, source: str | None = None) -> DagHealth:
    """The last successful and the latest run of ``dag_id`` (by data interval), with the
    row counts of the successful one when ``source`` names the source it ingests."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import nulls_last, select

    query = select(DagRun).where(DagRun.dag_id == dag_id)
    order = (nulls_last(DagRun.data_interval_start.desc()), nulls_last(DagRun.start_date.desc()))
    latest = session.scalars(query.order_by(*order).limit(1)).first()
    if latest is None:
        return DagHealth(dag_id, source, None, None)
    success = latest
    if latest.state != SUCCESS:
        success = session.scalars(query.where(DagRun.state == SUCCESS).order_by(*order).limit(1)).first()
    last_success = None
    if success is not None:
        streams = stream_rows(_return_values(session, dag_id, success.run_id)) if source else ()
        last_success = _run(success, streams)
    return DagHealth(dag_id, source, last_success, last_success if latest is success else _run(latest, ()))


def _run(dag_run: Any, streams: Iterable[StreamRows]) -> Run:
    from sluice.core.batch import batch_id
    from sluice.core.compat import run_path, ui_base_url

    start = as_utc(dag_run.data_interval_start)
    base_path = urlsplit(ui_base_url() or "").path.rstrip("/")
    return Run(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        state=str(getattr(dag_run.state, "value", dag_run.state)),
        batch=batch_id(start) if start else None,
        interval_start=start,
        interval_end=as_utc(dag_run.data_interval_end),
        start_date=as_utc(dag_run.start_date),
        end_date=as_utc(dag_run.end_date),
        link=base_path + run_path(dag_run.dag_id, dag_run.run_id),
        streams=tuple(streams),
    )


def _return_values(session: Any, dag_id: str, run_id: str) -> dict[str, Any]:
    """What each unmapped task of the run returned, by task id."""
    from sqlalchemy import select

    from sluice.core.compat import xcom_model

    XCom = xcom_model()
    rows = session.execute(
        select(XCom.task_id, XCom.value).where(
            XCom.dag_id == dag_id, XCom.run_id == run_id, XCom.key == "return_value", XCom.map_index == -1
        )
    ).all()
    values = {}
    for row in rows:
        try:
            values[row.task_id] = XCom.deserialize_value(row)
        except Exception:  # a custom XCom backend's reference, or a value of another shape
            log.warning("health page: could not read what %s.%s returned in %s", dag_id, row.task_id, run_id)
    return values


def stream_rows(returned: dict[str, Any]) -> list[StreamRows]:
    """Row counts per stream from an ingestion run's return values: ``land`` returns
    ``{stream: {read, landed, quarantined}}`` (or, for an Airbyte sync into the warehouse,
    ``{"airbyte_job_id", "rows": {stream: rows}}``); ``<stream>.load`` returns ``{"rows": n}``."""
    land = returned.get("land")
    counts: dict[str, dict[str, int | None]] = {}
    if isinstance(land, dict) and isinstance(land.get("rows"), dict) and "airbyte_job_id" in land:
        counts = {stream: {"landed": _int(rows)} for stream, rows in land["rows"].items()}
    elif isinstance(land, dict):
        counts = {
            stream: {key: _int(figures.get(key)) for key in ("read", "landed", "quarantined")}
            for stream, figures in land.items()
            if isinstance(figures, dict)
        }
    for task_id, value in returned.items():
        stream, _, task = task_id.rpartition(".")
        if task == "load" and stream and isinstance(value, dict):
            counts.setdefault(stream, {})["loaded"] = _int(value.get("rows"))
    return [StreamRows(stream, **figures) for stream, figures in sorted(counts.items())]


def _checks(health: Health, lake: Lake) -> None:
    from sluice.checks.results import latest

    results = _section(health, "the check results", lambda: latest(lake), [])
    health.freshness = sorted((r for r in results if r.check == "freshness"), key=lambda r: r.table_name)
    breaches = [r for r in results if r.status in (WARN, ERROR)]
    # errors first, then the newest
    breaches.sort(key=lambda r: r.checked_at, reverse=True)
    health.breaches = sorted(breaches, key=lambda r: r.status != ERROR)


def _open_incidents(lake: Lake) -> list[Incident]:
    from sluice.alerting.incidents import IncidentStore

    return IncidentStore(lake).open_incidents()


def erasure_states(lake: Lake) -> list[ErasureState]:
    """Every erasure request the lake knows of, open ones first, newest first within each."""
    from sluice.erasure.audit import audit_path
    from sluice.erasure.requests import requests_path

    received: dict[str, datetime | None] = {}
    steps: dict[str, dict[str, datetime]] = {}
    verified_clean: dict[str, bool] = {}
    requests = lake.delta_table(requests_path(lake))
    if requests is not None:  # the identifier column is never read
        for row in requests.to_pyarrow_table(columns=["request_id", "received_at"]).to_pylist():
            received.setdefault(row["request_id"], row["received_at"])
    audit = lake.delta_table(audit_path(lake))
    if audit is not None:
        table = audit.to_pyarrow_table(columns=["request_id", "step", "at", "received_at", "details"])
        for row in table.sort_by([("at", "ascending")]).to_pylist():
            request_id = row["request_id"]
            steps.setdefault(request_id, {})[row["step"]] = row["at"]
            if received.get(request_id) is None:
                received[request_id] = row["received_at"]
            if row["step"] == "verified":
                verified_clean[request_id] = bool(json.loads(row["details"] or "{}").get("clean"))
    states = []
    for request_id in received.keys() | steps.keys():
        done = steps.get(request_id, {})
        ordered = tuple(sorted(done.items(), key=lambda item: item[1]))
        states.append(
            ErasureState(
                request_id=request_id,
                state=_erasure_state(done, verified_clean.get(request_id, False)),
                received_at=as_utc(received.get(request_id)),
                updated_at=as_utc(ordered[-1][1]) if ordered else as_utc(received.get(request_id)),
                steps=tuple((step, as_utc(at)) for step, at in ordered),
            )
        )
    far_past = datetime.min.replace(tzinfo=UTC)
    states.sort(key=lambda s: s.received_at or s.updated_at or far_past, reverse=True)
    return sorted(states, key=lambda s: s.finished)


def _erasure_state(done: dict[str, datetime], clean: bool) -> str:
    if "rejected" in done:
        return "rejected"
    if "done" in done:
        return "done"
    if "verified" in done and not clean:
        return "verification_failed"
    if "erased_lake" in done and "purged" not in done:
        return "purge_pending"
    reached = [step for step in ERASURE_STEPS if step in done]
    return reached[-1] if reached else "received"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")
