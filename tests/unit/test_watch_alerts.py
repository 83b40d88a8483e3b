"""Slack alerts: one per incident, one "resolved", routed by meta, never failing or slowing a task.

Slack is a real HTTP server on loopback that the provider's notifiers post to; the
incident state is the real Delta table in a lake folder (and on S3 through moto).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from environment import VENV2_BIN, VENV_BIN, isolated_environment
from slack_receiver import WEBHOOK_ERRORS, SlackReceiver
from sluice.alerting.alerts import alert, resolve, task_failed, task_succeeded
from sluice.alerting.incidents import FAILED, LOGGED, OPEN, RESOLVED, SENT, IncidentStore

START = datetime(2026, 11, 20, 6, tzinfo=UTC)


@pytest.fixture
def watch_log():
    """Lines the watch modules log (pytest's own log capture may be off)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(f"{record.levelname} {record.getMessage()}")

    logger = logging.getLogger("sluice")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def task_context(run: int = 0, *, error: BaseException | None = None, map_index: int = -1, **ti: object) -> dict:
    """An Airflow task context of ``ingest_shop.orders.load`` in the ``run``-th batch."""
    start = START + timedelta(hours=6 * run)
    run_id = f"scheduled__{start.isoformat()}"
    instance = SimpleNamespace(
        dag_id="ingest_shop",
        task_id="orders.load",
        run_id=run_id,
        map_index=map_index,
        try_number=3,
        log_url=f"http://airflow.example/dags/ingest_shop/runs/{run_id}/tasks/orders.load?try_number=3",
    )
    vars(instance).update(ti)
    return {
        "ti": instance,
        "task_instance": instance,
        "run_id": run_id,
        "data_interval_start": start,
        "data_interval_end": start + timedelta(hours=6),
        "exception": error,
        "dag": SimpleNamespace(dag_id="ingest_shop", tags=["sluice", "ingest", "source:shop"]),
    }


def test_three_failures_send_one_alert_and_a_success_one_resolved(slack, local_lake):
    for run in range(3):
        outcome = task_failed(task_context(run, error=ValueError(f"bad batch {run} for ada@example.com")), local_lake)
        assert outcome.action == ("opened" if run == 0 else "repeated")
    assert len(slack.received) == 1
    text = slack.texts()[0]
    for part in (
        "Task failed: ingest_shop.orders.load",
        "*DAG* `ingest_shop`",
        "*task* `orders.load`",
        "2026-11-20 06:00 UTC → 2026-11-20 12:00 UTC",
        "ValueError: bad batch 0 for &lt;email&gt;",  # no personal data leaves the platform
        "<http://airflow.example/dags/ingest_shop/runs/scheduled__2026-11-20T06:00:00+00:00/tasks/orders.load",
    ):
        assert part in text
    assert slack.received[0]["blocks"][0]["text"]["text"] == text
    assert "channel" not in slack.received[0]  # no route: the webhook's own channel

    incident = IncidentStore(local_lake).current("ingest_shop/orders.load")
    assert (incident.status, incident.occurrences, incident.delivery) == (OPEN, 3, SENT)
    assert incident.what == "ValueError: bad batch 2 for <email>"  # the latest occurrence
    assert [i.incident_key for i in IncidentStore(local_lake).open_incidents()] == ["ingest_shop/orders.load"]

    assert task_succeeded(task_context(3), local_lake).action == "resolved"
    assert task_succeeded(task_context(4), local_lake).action == "none"
    assert len(slack.received) == 2
    assert "Resolved: Task failed: ingest_shop.orders.load" in slack.texts()[1]
    assert "seen 3 times" in slack.texts()[1]
    incident = IncidentStore(local_lake).current("ingest_shop/orders.load")
    assert (incident.status, incident.delivery) == (RESOLVED, SENT)
    assert IncidentStore(local_lake).open_incidents() == []

    # a new failure opens a new episode, with its own alert
    assert task_failed(task_context(5, error=RuntimeError("again")), local_lake).action == "opened"
    assert len(slack.received) == 3
    assert IncidentStore(local_lake).current("ingest_shop/orders.load").episode == 2


def test_a_success_with_no_incident_sends_and_writes_nothing(slack, local_lake):
    assert task_succeeded(task_context(), local_lake).action == "none"
    assert resolve("freshness/bronze.shop__orders", lake=local_lake).action == "none"
    assert slack.received == []
    assert not local_lake.exists(local_lake.path("ops"))


def test_a_mapped_sibling_succeeding_in_the_failed_run_resolves_nothing(slack, local_lake):
    task_failed(task_context(0, error=ValueError("file 3 unreadable"), map_index=3), local_lake)
    assert task_succeeded(task_context(0, map_index=0), local_lake).action == "none"
    assert task_succeeded(task_context(0, map_index=3), local_lake).action == "resolved"  # cleared and rerun
    assert len(slack.received) == 2


def test_checks_raise_and_resolve_incidents_by_key(slack, local_lake):
    key = "freshness/bronze.shop__orders"
    for _ in range(3):
        alert(key, "last batch 13 h ago (error after 12 h)", title="Table late", kind="freshness", lake=local_lake)
    assert len(slack.received) == 1 and "Table late" in slack.texts()[0]
    assert "*DAG*" not in slack.texts()[0]  # raised outside a task: nothing to name
    assert resolve(key, lake=local_lake).action == "resolved"
    assert resolve(key, lake=local_lake).action == "none"
    assert len(slack.received) == 2


def test_meta_owner_and_channel_route_the_alert(slack, local_lake, tmp_path, monkeypatch):
    include = tmp_path / "include"
    (include / "sources").mkdir(parents=True)
    (include / "sources" / "shop.yml").write_text(
        "connector: source-shop\nmeta: {owner: '<!subteam^S0SHOP>', channel: '#shop-data'}\n"
        "streams:\n  orders: {record_key: id}\n"
    )
    manifest = tmp_path / "manifest.json"
    model = {"resource_type": "model", "name": "fct_orders", "meta": {}, "config": {"meta": {"channel": "#finance"}}}
    manifest.write_text(json.dumps({"nodes": {"model.sluice.fct_orders": model}, "sources": {}}))
    monkeypatch.setenv("SLUICE_INCLUDE_DIR", str(include))
    monkeypatch.setenv("SLUICE_DBT_MANIFEST", str(manifest))
    monkeypatch.setenv("SLUICE_SLACK_OWNER", "<@U0PLATFORM>")

    # a failing task of the source's DAG (tagged source:shop) goes to the source's owner and channel
    task_failed(task_context(error=ValueError("boom")), local_lake)
    # a model's meta names a channel; its owner falls back to the platform's
    alert("threshold/fct_orders/volume", "rows 12 (z = -4.1)", model="fct_orders", lake=local_lake)
    # neither: the platform default channel
    monkeypatch.setenv("SLUICE_SLACK_CHANNEL", "#data-alerts")
    alert("freshness/unknown", "late", lake=local_lake)

    routes = [(message.get("channel"), message["text"].splitlines()[0]) for message in slack.received]
    assert routes[0][0] == "#shop-data" and routes[0][1].endswith("<!subteam^S0SHOP>")
    assert routes[1][0] == "#finance" and routes[1][1].endswith("<@U0PLATFORM>")
    assert routes[2][0] == "#data-alerts"
    # the resolved message goes where the alert went
    task_succeeded(task_context(1), local_lake)
    assert slack.received[-1]["channel"] == "#shop-data" and "<!subteam^S0SHOP>" in slack.received[-1]["text"]


@pytest.fixture
def slack_clients(monkeypatch) -> list:
    """The Slack clients that sent (or tried to send) each message, as the notifier built them."""
    from sluice.alerting import slack as slack_module

    clients: list = []
    call_within = slack_module._call_within

    def recording(send, seconds):
        clients.append(send.__self__.hook.client)
        return call_within(send, seconds)

    monkeypatch.setattr(slack_module, "_call_within", recording)
    return clients


@pytest.mark.parametrize("failure", ["error", "hang", "refused"])
def test_slack_down_or_slow_neither_raises_nor_holds_the_task(
    failure, slack, slack_clients, local_lake, watch_log, monkeypatch
):
    monkeypatch.setenv("SLUICE_SLACK_TIMEOUT_SECONDS", "0.5")
    if failure == "refused":
        slack.stop()  # nothing listens on the port any more
    slack.mode, slack.hang_seconds = failure, 60.0  # released below, once the call has returned
    outcome = task_failed(task_context(error=ValueError("boom")), local_lake)
    # bounded by the timeout's contract, not by a wall clock: one try with the 0.5 s timeout ...
    assert [(client.timeout, client.retry_handlers) for client in slack_clients] == [(0.5, [])]
    if failure != "refused":
        assert len(slack.received) == 1  # ... one request, not tried again ...
    if failure == "hang":
        assert slack.answered == 0  # ... given up on while the receiver still held its reply
    assert outcome.delivery.status == FAILED
    expected = {"error": "500", "hang": "did not answer within 0.5 s", "refused": "Connection refused"}[failure]
    assert expected in outcome.delivery.error
    assert any(line.startswith("ERROR Alert not sent") and expected in line for line in watch_log)
    incident = IncidentStore(local_lake).current("ingest_shop/orders.load")
    assert incident.delivery == FAILED and expected in incident.delivery_error

    if failure != "refused":  # Slack is back: the next repeat sends the alert that never arrived
        slack.release.set()
        slack.mode = "ok"
        assert task_failed(task_context(1, error=ValueError("boom")), local_lake).action == "resent"
        assert IncidentStore(local_lake).current("ingest_shop/orders.load").delivery == SENT
        assert task_failed(task_context(2, error=ValueError("boom")), local_lake).action == "repeated"


def assert_refused_then_sent_again(refusal, reason, slack, local_lake, watch_log, key, raise_incident) -> None:
    """Slack refused the incident's first message for ``refusal``: a failed delivery, logged with
    Slack's ``reason``, kept as failed in the incident; once Slack takes messages again, the next
    repeat sends it, and the one after that is only counted."""
    slack.refuse(refusal)
    outcome = raise_incident(0)  # returns, raising nothing: the task goes on
    assert outcome.action == "opened" and len(slack.received) == 1
    assert outcome.delivery.status == FAILED and reason in outcome.delivery.error, outcome.delivery
    errors = [line for line in watch_log if line.startswith("ERROR Alert not sent")]
    assert len(errors) == 1 and reason in errors[0], watch_log
    incident = IncidentStore(local_lake).current(key)
    assert (incident.delivery, incident.delivery_error) == (FAILED, outcome.delivery.error)

    slack.mode = "ok"
    assert raise_incident(1).action == "resent" and len(slack.received) == 2
    assert IncidentStore(local_lake).current(key).delivery == SENT
    assert raise_incident(2).action == "repeated" and len(slack.received) == 2


@pytest.mark.parametrize("refusal", sorted(WEBHOOK_ERRORS))
def test_a_webhook_refusing_the_alert_is_a_failed_delivery_sent_again_later(refusal, slack, local_lake, watch_log):
    def fail(run: int):
        return task_failed(task_context(run, error=ValueError("boom")), local_lake)

    reason = f"Response body: '{refusal}', Status Code: {WEBHOOK_ERRORS[refusal]}"
    assert_refused_then_sent_again(refusal, reason, slack, local_lake, watch_log, "ingest_shop/orders.load", fail)


@pytest.mark.parametrize("refusal", ["channel_not_found", "not_in_channel", "is_archived", "invalid_auth"])
def test_the_web_api_answering_not_ok_is_a_failed_delivery_sent_again_later(
    refusal, slack, local_lake, watch_log, monkeypatch
):
    """chat.postMessage answers a refused message with 200 and ``{"ok": false, "error": ...}``."""
    connection = {
        "conn_type": "slack",
        "password": "xoxb-not-a-real-token",
        "extra": {"base_url": f"http://127.0.0.1:{slack.port}/api/"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(connection))
    monkeypatch.setenv("SLUICE_SLACK_CHANNEL", "#data-alerts")

    def late(_: int):
        return alert("freshness/x", "late", lake=local_lake)

    reason = f"Slack refused the message: {refusal} (HTTP 200, ok: false)"
    assert_refused_then_sent_again(refusal, reason, slack, local_lake, watch_log, "freshness/x", late)
    assert slack.paths == ["/api/chat.postMessage"] * 2


def test_without_a_slack_connection_the_alert_is_only_logged(slack, local_lake, watch_log, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_ALERTS")
    outcome = task_failed(task_context(error=ValueError("boom")), local_lake)
    assert outcome.delivery.status == LOGGED and outcome.delivery.error is None
    logged = [line for line in watch_log if "No Slack connection 'slack_alerts'" in line]
    assert len(logged) == 1 and "ValueError: boom" in logged[0] and logged[0].startswith("WARNING")
    assert IncidentStore(local_lake).current("ingest_shop/orders.load").delivery == LOGGED
    assert task_failed(task_context(1, error=ValueError("boom")), local_lake).action == "repeated"
    assert slack.received == []


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("http//127.0.0.1:{port}/services/T0/B0/secret", "malformed webhook URL (no '://')"),
        ("ftp://127.0.0.1:{port}/services/T0/B0/secret", "not an http(s) URL"),
        ("http://127.0.0.1:port/services/T0/B0/secret", "port is not a number"),
        ("https:///services/T0/B0/secret", "names no host"),
        ("", "no webhook URL in its password"),
    ],
)
def test_a_malformed_webhook_url_is_a_clear_logged_error(password, problem, slack, local_lake, watch_log, monkeypatch):
    connection = {"conn_type": "slackwebhook", "password": password.format(port=slack.port)}
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(connection))
    outcome = alert("freshness/x", "late", lake=local_lake)
    assert outcome.delivery.status == FAILED
    assert problem in outcome.delivery.error and "'slack_alerts'" in outcome.delivery.error
    errors = [line for line in watch_log if line.startswith("ERROR")]
    assert len(errors) == 1 and problem in errors[0]
    assert not any("secret" in line for line in watch_log)  # the webhook's token is never logged
    assert IncidentStore(local_lake).current("freshness/x").delivery_error == outcome.delivery.error
    assert slack.received == []


def test_an_api_token_connection_posts_to_the_routed_channel(slack, local_lake, monkeypatch):
    connection = {
        "conn_type": "slack",
        "password": "xoxb-not-a-real-token",
        "extra": {"base_url": f"http://127.0.0.1:{slack.port}/api/"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(connection))
    assert alert("freshness/x", "late", lake=local_lake).delivery.status == FAILED  # no channel to post to
    monkeypatch.setenv("SLUICE_SLACK_CHANNEL", "#data-alerts")
    assert alert("freshness/y", "late", lake=local_lake).delivery.status == SENT
    assert slack.paths == ["/api/chat.postMessage"]
    assert slack.received[0]["channel"] == "#data-alerts" and "late" in slack.received[0]["text"]


def test_racing_failures_of_one_incident_send_one_alert(slack, lake):
    """Mapped copies of a task failing at once: one opens the incident, the others count."""
    outcomes: list = []
    start = threading.Barrier(4)

    def fail(index: int) -> None:
        start.wait()
        outcomes.append(task_failed(task_context(error=ValueError(index), map_index=index), lake))

    threads = [threading.Thread(target=fail, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcome.action for outcome in outcomes) == ["opened", "repeated", "repeated", "repeated"]
    assert len(slack.received) == 1
    assert IncidentStore(lake).current("ingest_shop/orders.load").occurrences == 4


def test_every_platform_task_gets_the_callbacks_without_loading_slack_at_parse_time(tmp_path):
    code = textwrap.dedent(
        """
        import json, sys
        from sluice.dag_builder import ingestion_dag, transform_dag
        from sluice.alerting.callbacks import on_task_failure, on_task_success
        tasks = [t for dag in (ingestion_dag("faker"), transform_dag()) for t in dag.tasks]
        print(json.dumps({
            "tasks": len(tasks),
            "wired": all(on_task_failure in list(t.on_failure_callback or [])
                         and on_task_success in list(t.on_success_callback or []) for t in tasks),
            "heavy": sorted(m for m in sys.modules if m.startswith((
                "airflow.providers.slack.notifications", "airflow.providers.slack.hooks", "slack_sdk",
                "sluice.alerting.alerts", "sluice.alerting.incidents", "sluice.alerting.slack"))),
        }))
        """
    )
    env = isolated_environment(tmp_path / "airflow", tmp_path / "data")
    proc = subprocess.run([VENV_BIN / "python", "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["tasks"] > 5 and result["wired"]
    assert result["heavy"] == []


FAILING_DAG = '''
"""A platform DAG whose task fails until a flag file exists."""
import os

from airflow.providers.standard.operators.python import PythonOperator

from sluice.dag_builder import platform_dag


def work():
    if not os.path.exists(os.environ["FLAG"]):
        raise ValueError("the shop API answered 503")


with platform_dag("watch_probe", doc_md="Fails until the flag file exists.", tags=["test"]) as dag:
    PythonOperator(task_id="work", python_callable=work)
'''

RUN_DAG = """
import os, sys
from datetime import datetime, timedelta, timezone

import airflow

from sluice.dag_builder import run_in_process

folder = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
if airflow.__version__.startswith("2."):
    from airflow.models.dagbag import DagBag

    dag = DagBag(dag_folder=folder, include_examples=False).dags["watch_probe"]
else:
    from airflow.dag_processing.dagbag import BundleDagBag

    dag = BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder").dags["watch_probe"]
for run, state in enumerate(sys.argv[1:]):
    if state == "succeed":
        open(os.environ["FLAG"], "w").close()
    start = datetime(2026, 11, 20, tzinfo=timezone.utc) + timedelta(hours=6 * run)
    print("RUN", run, run_in_process(dag, start, start + timedelta(hours=6)).state, flush=True)
"""


@pytest.fixture(params=["airflow3", "airflow2"])
def airflow_home(request: pytest.FixtureRequest, tmp_path: Path, slack: SlackReceiver):
    """(version, interpreter, environment) of an Airflow with a migrated metadata DB, whose
    environment holds the ``slack`` receiver's connection."""
    if request.param == "airflow3":
        request.getfixturevalue("airflow_db")
        return "airflow3", VENV_BIN / "python", dict(os.environ)
    python = VENV2_BIN / "python"
    if not python.exists():
        pytest.fail(f"{python} missing: run `make test`, which installs both Airflow versions")
    env = isolated_environment(tmp_path / "airflow2", tmp_path / "data")
    subprocess.run([VENV2_BIN / "airflow", "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    return "airflow2", python, env


def test_a_real_task_failure_alerts_once_after_its_retries_and_its_success_resolves(slack, airflow_home, tmp_path):
    """Airflow runs a platform DAG's task; the callbacks come from the builder's defaults."""
    version, python, env = airflow_home
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "watch_probe.py").write_text(FAILING_DAG)
    (tmp_path / "run.py").write_text(RUN_DAG)
    env = {
        **env,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "SLUICE_LAKE_ROOT": str(tmp_path / "lake"),
        "FLAG": str(tmp_path / "flag"),
        "SLUICE_RETRY_DELAY_SECONDS": "0",  # the platform's 2 retries, a second or two apart
    }
    proc = subprocess.run(
        [python, tmp_path / "run.py", "fail", "fail", "succeed"], env=env, capture_output=True, text=True, timeout=300
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    runs = [line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("RUN")]
    assert runs == ["failed", "failed", "success"]
    # two runs failed, each after its two retries: one alert; the success: one resolved
    assert len(slack.received) == 2, slack.texts()
    alert_text, resolved_text = slack.texts()
    assert "Task failed: watch_probe.work" in alert_text
    assert "ValueError: the shop API answered 503" in alert_text
    # DAG.test gives a manual run the interval ending at its logical date: the first run's
    assert "*interval* 2026-11-19 18:00 UTC → 2026-11-20 00:00 UTC" in alert_text
    # the task instance's own link to its log (3.x: the task's page at its last try; 2.11: the grid's log tab)
    log_link = "/tasks/work?try_number=3|Task log>" if version == "airflow3" else "&tab=logs|Task log>"
    assert "<http://localhost:8080/dags/watch_probe/" in alert_text and log_link in alert_text
    assert "Resolved: Task failed: watch_probe.work" in resolved_text and "seen 2 times" in resolved_text
    assert "Failure alert: opened" in output and "Failure alert: repeated" in output


def test_a_late_batch_alerts_once_and_the_next_successful_run_resolves_it(slack, lake_root, monkeypatch):
    """The deadline callback gets what Airflow 3's scheduler hands it: the run as the REST
    API shows it, and the deadline."""
    from sluice.alerting.callbacks import on_batch_late, on_dag_success
    from sluice.lake.storage import open_lake

    monkeypatch.setenv("SLUICE_LAKE_ROOT", str(lake_root))
    include = lake_root.parent / "include"
    (include / "sources").mkdir(parents=True)
    (include / "sources" / "shop.yml").write_text(
        "connector: source-shop\nmeta: {channel: '#shop-data'}\nstreams:\n  orders: {record_key: id}\n"
    )
    monkeypatch.setenv("SLUICE_INCLUDE_DIR", str(include))
    run = {
        "dag_id": "ingest_shop",
        "dag_run_id": "scheduled__2026-11-20T06:00:00+00:00",
        "data_interval_start": "2026-11-20T06:00:00Z",
        "data_interval_end": "2026-11-20T12:00:00Z",
        "queued_at": "2026-11-20T12:00:03Z",
    }
    context = {"dag_run": run, "deadline": {"id": "d1", "deadline_time": datetime(2026, 11, 20, 17, 0, 3, tzinfo=UTC)}}
    for _ in range(2):  # the next run is late too: the same incident
        on_batch_late(context=context, tags=["ingest", "sluice", "source:shop"])
    assert len(slack.received) == 1
    text = slack.texts()[0]
    for part in (
        "Batch late: ingest_shop",
        "*interval* 2026-11-20 06:00 UTC → 2026-11-20 12:00 UTC",
        "run scheduled__2026-11-20T06:00:00+00:00 had not finished by 2026-11-20 17:00 UTC",
        "/dags/ingest_shop/runs/scheduled__2026-11-20T06%3A00%3A00%2B00%3A00|DAG run>",
    ):
        assert part in text
    assert slack.received[0]["channel"] == "#shop-data"  # routed by the source the DAG's tags name
    incident = IncidentStore(open_lake(str(lake_root))).current("ingest_shop/late")
    assert (incident.status, incident.kind, incident.occurrences) == (OPEN, "deadline", 2)

    on_dag_success({"dag_run": SimpleNamespace(dag_id="ingest_shop", run_id="scheduled__2026-11-20T12:00:00+00:00")})
    assert len(slack.received) == 2 and "Resolved: Batch late: ingest_shop" in slack.texts()[1]
    on_dag_success({"dag_run": SimpleNamespace(dag_id="ingest_shop", run_id="scheduled__2026-11-20T18:00:00+00:00")})
    assert len(slack.received) == 2


def test_every_platform_dag_has_a_late_batch_alert(monkeypatch):
    from sluice.dag_builder import erasure_dag, ingestion_dag

    monkeypatch.setenv("SLUICE_BATCH_LATE_HOURS", "5")
    for dag in (ingestion_dag("faker"), erasure_dag()):
        [deadline] = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
        assert deadline.interval == timedelta(hours=5)
        assert type(deadline.reference).__name__ == "DagRunQueuedAtDeadline"
        assert deadline.callback.path == "sluice.alerting.callbacks.on_batch_late"
        assert "sluice" in deadline.callback.kwargs["tags"]
    monkeypatch.setenv("SLUICE_BATCH_LATE_HOURS", "soon")
    with pytest.raises(ValueError, match="SLUICE_BATCH_LATE_HOURS='soon'"):
        ingestion_dag("faker")


SLA_MISS = """
from datetime import datetime, timezone
from types import SimpleNamespace

from airflow.utils.state import DagRunState
from airflow.utils.types import DagRunType

from sluice.dag_builder import ingestion_dag

dag = ingestion_dag("faker")
assert dag.sla_miss_callback.__name__ == "on_sla_miss"
assert {task.sla.total_seconds() for task in dag.tasks} == {5 * 3600.0}
start = datetime(2026, 11, 20, 6, tzinfo=timezone.utc)
dag.create_dagrun(
    run_id="scheduled__2026-11-20T06:00:00+00:00",
    run_type=DagRunType.SCHEDULED,
    execution_date=start,
    data_interval=(start, start.replace(hour=12)),
    state=DagRunState.RUNNING,
)
miss = SimpleNamespace(execution_date=start, task_id="land")
dag.sla_miss_callback(dag, "land", "", [miss], [])
"""


def test_on_airflow2_an_sla_miss_is_a_late_batch_alert(slack, tmp_path):
    env = isolated_environment(tmp_path / "airflow2", tmp_path / "data")
    env["AIRFLOW_CONN_SLACK_ALERTS"] = os.environ["AIRFLOW_CONN_SLACK_ALERTS"]
    subprocess.run([VENV2_BIN / "airflow", "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    proc = subprocess.run([VENV2_BIN / "python", "-c", SLA_MISS], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(slack.received) == 1, proc.stderr[-3000:]
    text = slack.texts()[0]
    assert "Batch late: ingest_faker" in text
    assert "*interval* 2026-11-20 06:00 UTC → 2026-11-20 12:00 UTC" in text
    assert "had not finished by 2026-11-20 17:00 UTC" in text
    assert "/dags/ingest_faker/grid?dag_run_id=scheduled__2026-11-20T06%3A00%3A00%2B00%3A00|DAG run>" in text
