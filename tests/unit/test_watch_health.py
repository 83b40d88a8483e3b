"""The platform health page: its figures from real DAG runs and lake tables, and its app behind the login.

The DAG runs are made by Airflow (``dag.test`` of DAGs named like ingestion DAGs, built by
the platform's builder) in the session's metadata database; check results, incidents and
erasure requests are written to a lake folder through the modules that write them in
production. The HTTP tests go through Airflow's own API server app (plugins, auth
manager, middlewares) in this process.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import textwrap
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from environment import VENV2_BIN, VENV_BIN, isolated_environment, make_environment
from health_platform import B2, B3, CHECKS, EMAIL, NOW, RUNS, SOURCES, build_platform, make_runs
from sluice.checks import results
from sluice.lake.storage import open_lake


@pytest.fixture(scope="module")
def platform(airflow_db, tmp_path_factory):
    """Sources, DAG runs, check results, incidents and erasure requests of a small platform."""
    root = tmp_path_factory.mktemp("health")
    built = build_platform(VENV_BIN / "python", dict(os.environ), root)
    return {**built, "lake": open_lake(built["env"]["SLUICE_LAKE_ROOT"])}


@pytest.fixture
def platform_env(platform, monkeypatch):
    """This process reads the platform's sources and lake (as the API server would)."""
    for name in ("SLUICE_INCLUDE_DIR", "SLUICE_LAKE_ROOT"):
        monkeypatch.setenv(name, platform["env"][name])
    return platform


def run_link(dag_id: str, run_id: str) -> str:
    return f"/dags/{dag_id}/runs/{quote(run_id, safe='')}"


def test_each_source_shows_its_last_successful_batch_and_its_rows(platform_env):
    from sluice.ui.health import StreamRows, gather

    health = gather(platform_env["lake"], now=NOW)
    assert health.problems == []
    by_source = {dag.source: dag for dag in health.sources}
    assert sorted(by_source) == ["crm", "shop"]
    shop = by_source["shop"]
    # the newest interval that succeeded, not the older interval rerun after it
    assert shop.last_success.batch == B2
    assert shop.last_success.run_id == platform_env["run_ids"][("ingest_shop", B2)]
    assert shop.last_success.interval_start == datetime(2026, 11, 20, 6, tzinfo=UTC)
    assert shop.last_success.link == run_link("ingest_shop", shop.last_success.run_id)
    assert shop.last_success.streams == (
        StreamRows("customers", read=7, landed=7, quarantined=0, loaded=7),
        StreamRows("orders", read=2345, landed=2301, quarantined=44, loaded=2301),
    )
    # the latest run failed: shown beside the last success, with its own link
    assert (shop.latest.batch, shop.latest.state) == (B3, "failed")
    assert shop.latest.link == run_link("ingest_shop", platform_env["run_ids"][("ingest_shop", B3)])
    assert by_source["crm"].dag_id == "ingest_crm"
    assert by_source["crm"].last_success is None and by_source["crm"].latest is None
    assert [dag.dag_id for dag in health.dags] == ["transform", "gdpr_erasure"]


def test_freshness_is_each_tables_latest_result_and_breaches_are_latest_warnings_and_errors(platform_env):
    from sluice.ui.health import gather

    health = gather(platform_env["lake"], now=NOW)
    freshness = {(r.table_name, r.status, r.value) for r in health.freshness}
    assert freshness == {("bronze.shop__customers", "warn", 30000), ("bronze.shop__orders", "pass", 7500)}
    assert [(r.status, r.table_name, r.check) for r in health.breaches] == [
        ("error", "silver.orders", "uniqueness"),
        ("warn", "bronze.shop__customers", "freshness"),
    ]


def test_the_failed_runs_incident_is_open(platform_env):
    from sluice.ui.health import gather

    health = gather(platform_env["lake"], now=NOW)
    incidents = [(i.title, i.what, i.run_id) for i in health.incidents]
    failed_run = platform_env["run_ids"][("ingest_shop", B3)]
    assert incidents == [("Task failed: ingest_shop.land", "RuntimeError: the connector exited with 1", failed_run)]


def test_erasure_requests_show_their_state_by_id_and_never_an_identifier(platform_env):
    from sluice.ui.health import gather
    from sluice.ui.page import render

    health = gather(platform_env["lake"], now=NOW)
    states = {e.request_id: e.state for e in health.erasures}
    assert states == {
        "req-waiting": "received",
        "req-purge": "purge_pending",
        "req-dirty": "verification_failed",
        "req-done": "done",
        "req-nobody": "rejected",
    }
    # open ones first
    assert [e.finished for e in health.erasures] == [False, False, False, True, True]
    done = next(e for e in health.erasures if e.request_id == "req-done")
    assert [step for step, _ in done.steps] == [
        "resolved",
        "erased_warehouse",
        "erased_lake",
        "purged",
        "verified",
        "done",
    ]
    assert done.received_at == NOW - timedelta(days=1)
    page, figures = render(health), json.dumps(health.to_json())
    assert "req-waiting" in page and "purge pending" in page and "verification failed" in page
    for text in (page, figures):
        assert EMAIL not in text and "ada.lovelace" not in text


def test_the_page_shows_the_figures_escaped_with_links_to_the_runs(platform_env):
    from sluice.ui.health import gather
    from sluice.ui.page import render

    page = render(gather(platform_env["lake"], now=NOW), docs_href="/sluice/dbt-docs/")
    assert "<script>alert(1)</script>" not in page
    assert "17 duplicate order ids &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "2,345" in page and "2,301" in page and ">44<" in page
    b2_run = platform_env["run_ids"][("ingest_shop", B2)]
    assert f"href='{run_link('ingest_shop', b2_run)}' target='_top'" in page
    assert "2 h 5 min" in page  # the orders table's lag, 7,500 s
    assert "no successful batch yet" in page  # crm
    # the incident links to the failed task's log, on the host serving the page
    b3_run = platform_env["run_ids"][("ingest_shop", B3)]
    log = f"{run_link('ingest_shop', b3_run)}/tasks/land?try_number=3"
    assert f"<a href='{log}' target='_top'>ingest_shop.land</a>" in page
    assert "href='/sluice/dbt-docs/'" in page


def test_a_broken_source_declaration_is_reported_and_the_rest_still_shows(platform_env, tmp_path, monkeypatch):
    from sluice.ui.health import gather
    from sluice.ui.page import render

    include = tmp_path / "include"
    (include / "sources").mkdir(parents=True)
    for name, text in SOURCES.items():
        (include / "sources" / f"{name}.yml").write_text(textwrap.dedent(text))
    (include / "sources" / "broken.yml").write_text("connector: source-broken\n")  # no streams
    monkeypatch.setenv("SLUICE_INCLUDE_DIR", str(include))
    health = gather(platform_env["lake"], now=NOW)
    assert [dag.source for dag in health.sources] == ["crm", "shop"]
    assert len(health.problems) == 1
    assert "Could not read source 'broken'" in health.problems[0]
    assert "missing required keys ['streams']" in health.problems[0]
    assert "missing required keys" in render(health)


# -- the app, through Airflow's API server app


@pytest.fixture(scope="module")
def api_client(platform, tmp_path_factory):
    """Airflow's API server app (with the plugins of the project), and the admin's password."""
    from starlette.testclient import TestClient

    passwords = tmp_path_factory.mktemp("auth") / "passwords.json"
    passwords.write_text(json.dumps({"admin": "s3cret-test"}))
    patch = pytest.MonkeyPatch()
    patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
    # the tokens' signing key (an Airflow home's config has one only once a command wrote it)
    patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(16))
    patch.setenv("SLUICE_INCLUDE_DIR", platform["env"]["SLUICE_INCLUDE_DIR"])
    patch.setenv("SLUICE_LAKE_ROOT", platform["env"]["SLUICE_LAKE_ROOT"])
    docs = platform["root"] / "docs"
    docs.mkdir()
    (docs / "index.html").write_text("<html><head></head><body>sluice dbt docs</body></html>")
    (docs / "manifest.json").write_text(json.dumps({"nodes": {"model.sluice.orders": {}}}))
    patch.setenv("SLUICE_DBT_DOCS_DIR", str(docs))
    from airflow.api_fastapi.app import create_app

    with TestClient(create_app(), base_url="http://localhost:8080") as client:
        yield client
    patch.undo()


def token(client, password: str = "s3cret-test") -> str:
    reply = client.post("/auth/token", json={"username": "admin", "password": password})
    assert reply.status_code == 201, reply.text
    return reply.json()["access_token"]


def test_the_app_refuses_anonymous_requests_and_sends_browsers_to_the_login(api_client):
    api_client.cookies.clear()
    for path in ("/sluice/health", "/sluice/health.json", "/sluice/dbt-docs/", "/sluice/dbt-docs/manifest.json"):
        reply = api_client.get(path, follow_redirects=False)
        assert reply.status_code == 401, (path, reply.status_code, reply.text[:200])
        assert "2,345" not in reply.text and "nodes" not in reply.text
        browser = api_client.get(path, headers={"Accept": "text/html"}, follow_redirects=False)
        assert browser.status_code == 303, path
        assert browser.headers["location"] == f"/auth/login?next={quote(f'http://localhost:8080{path}', safe='')}"
    forged = api_client.get("/sluice/health.json", headers={"Authorization": "Bearer not.a.token"})
    assert forged.status_code == 403


def test_the_app_serves_the_page_and_the_docs_to_a_logged_in_user(api_client):
    jwt = token(api_client)
    # the UI's cookie, as a browser sends it
    api_client.cookies.set("_token", jwt)
    page = api_client.get("/sluice/health", headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text[:500]
    assert "2,345" in page.text and "Task failed: ingest_shop.land" in page.text
    assert "href='/sluice/dbt-docs/'" in page.text
    figures = api_client.get("/sluice/health.json").json()
    shop = next(s for s in figures["sources"] if s["source"] == "shop")
    assert shop["last_success"]["batch"] == B2
    assert {s["stream"]: s["landed"] for s in shop["last_success"]["streams"]} == {"customers": 7, "orders": 2301}
    docs = api_client.get("/sluice/dbt-docs/")
    assert docs.status_code == 200 and "sluice dbt docs" in docs.text
    assert docs.headers["content-security-policy"] == "frame-ancestors 'self'; connect-src 'self'"
    assert api_client.get("/sluice/dbt-docs/manifest.json").json() == {"nodes": {"model.sluice.orders": {}}}
    # the catalog was not generated: a clear 404; files other than the docs' are not served
    missing = api_client.get("/sluice/dbt-docs/catalog.json")
    assert missing.status_code == 404 and "make dbt-docs" in missing.json()["detail"]
    assert api_client.get("/sluice/dbt-docs/run_results.json").status_code == 404
    assert api_client.get("/sluice/dbt-docs/..%2F..%2Fprofiles.yml").status_code == 404
    api_client.cookies.clear()
    # a token in the Authorization header works as well
    bearer = api_client.get("/sluice/health.json", headers={"Authorization": f"Bearer {jwt}"})
    assert bearer.status_code == 200


def test_the_navigation_lists_the_page_and_the_docs_and_cosmos_serves_no_docs(api_client):
    jwt = token(api_client)
    plugins = api_client.get("/api/v2/plugins", headers={"Authorization": f"Bearer {jwt}"}).json()["plugins"]
    views = {p["name"]: p["external_views"] for p in plugins}
    assert [(v["name"], v["href"], v["url_route"]) for v in views["sluice"]] == [
        ("Platform health", "/sluice/health", "sluice-health"),
        ("dbt docs", "/sluice/dbt-docs/", "sluice-dbt-docs"),
    ]
    # Cosmos' own dbt docs routes are anonymous: Sluice's settings never configure them
    assert views["cosmos"] == []
    assert not any(name.startswith("AIRFLOW__COSMOS__DBT_DOCS") for name in make_environment())
    assert api_client.get("/cosmos/sluice/dbt_docs_index.html").status_code == 404


def test_the_plugin_builds_no_web_app_in_processes_that_only_load_it(tmp_path):
    """Schedulers, DAG processors and workers import the plugin: the page's modules stay unloaded."""
    code = textwrap.dedent(
        """
        import json, sys
        from airflow import plugins_manager
        plugins, errors = plugins_manager._get_plugins()
        print(json.dumps({
            "plugins": sorted(p.name for p in plugins), "errors": errors,
            "loaded": sorted(m for m in sys.modules if m.startswith(("sluice.ui.page", "sluice.ui.health"))),
        }))
        """
    )
    env = isolated_environment(tmp_path / "airflow", tmp_path / "data")
    proc = subprocess.run([VENV_BIN / "python", "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "sluice" in loaded["plugins"] and loaded["errors"] == {}
    assert loaded["loaded"] == []


AIRFLOW2_WEBSERVER = """
import json

from airflow.www.app import create_app

app = create_app(config={"WTF_CSRF_ENABLED": False}, testing=True)
sm = app.appbuilder.sm
sm.add_user("admin", "Ada", "Admin", "admin@example.org", sm.find_role("Admin"), password="s3cret-test")
client = app.test_client()
seen = {"menu": [item.name for item in app.appbuilder.menu.find("Browse").childs]}
for path in ("/sluice/health", "/sluice/dbt-docs/"):
    reply = client.get(path)
    seen["anonymous " + path] = [reply.status_code, reply.headers.get("Location")]
seen["login"] = client.post("/login/", data={"username": "admin", "password": "s3cret-test"}).status_code
for path in ("/sluice/health", "/sluice/dbt-docs/", "/sluice/dbt-docs/catalog.json"):
    reply = client.get(path)
    seen[path] = [reply.status_code, reply.get_data(as_text=True), reply.headers.get("Content-Security-Policy")]
print("SEEN", json.dumps(seen))
"""


def test_on_airflow_2_the_views_need_a_login_and_show_the_runs(tmp_path):
    """Airflow 2.11: the plugin's Flask AppBuilder views, in the webserver's own app, over
    runs and return values that 2.11 recorded (XComs stored as JSON bytes)."""
    python = VENV2_BIN / "python"
    if not python.exists():
        pytest.fail(f"{python} missing: run `make test`, which installs both Airflow versions")
    include = tmp_path / "include"
    (include / "sources").mkdir(parents=True)
    (include / "sources" / "shop.yml").write_text(textwrap.dedent(SOURCES["shop"]))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.html").write_text("<html><body>sluice dbt docs</body></html>")
    env = {
        **isolated_environment(tmp_path / "airflow2", tmp_path / "data"),
        "SLUICE_INCLUDE_DIR": str(include),
        "SLUICE_LAKE_ROOT": str(tmp_path / "lake"),
        "SLUICE_DBT_DOCS_DIR": str(docs),
    }
    subprocess.run([VENV2_BIN / "airflow", "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    run_ids = make_runs(python, env, tmp_path / "probe", RUNS[:2])
    results.record(open_lake(str(tmp_path / "lake")), CHECKS[1:3])
    proc = subprocess.run([python, "-c", AIRFLOW2_WEBSERVER], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    seen = json.loads(next(line[5:] for line in proc.stdout.splitlines() if line.startswith("SEEN ")))
    assert {"Platform health", "dbt docs"} <= set(seen["menu"])
    for path in ("/sluice/health", "/sluice/dbt-docs/"):
        status, location = seen["anonymous " + path]
        assert status == 302 and location.startswith("/login/?next="), (path, status, location)
    assert seen["login"] == 302
    status, page, _ = seen["/sluice/health"]
    assert status == 200, page[-2000:]
    assert "2,345" in page and "2,301" in page and ">44<" in page
    run_id = run_ids[("ingest_shop", B2)]
    assert f"href='/dags/ingest_shop/grid?dag_run_id={quote(run_id, safe='')}'" in page
    assert "bronze.shop__customers" in page and "2 h 5 min" in page
    status, index, csp = seen["/sluice/dbt-docs/"]
    assert (status, index, csp) == (
        200,
        "<html><body>sluice dbt docs</body></html>",
        "frame-ancestors 'self'; connect-src 'self'",
    )
    status, missing, _ = seen["/sluice/dbt-docs/catalog.json"]
    assert status == 404 and "make dbt-docs" in missing
