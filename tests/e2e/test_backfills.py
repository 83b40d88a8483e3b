"""The platform's day backfilled, compared with the same day run one batch at a time
(:mod:`e2e.one_day`): as an Airflow 3 backfill through ``make backfill`` (real scheduler,
API server and triggerer) with the lake on S3, and as an Airflow 2.11 ``airflow dags
backfill``; each must give the same lake and tables. Each backfill runs before the day it
is compared with is asked for, so another worker may be running the day meanwhile.
"""

from __future__ import annotations

import itertools
import json

import pytest

from company_exports import drop_exports
from e2e.one_day import (
    BATCH_STARTS,
    assert_one_honest_run_per_interval,
    assert_same,
    assert_transform_built,
    backfill,
    dag_runs,
    metadata,
    one_by_one,
    run_batch,
)
from e2e.snapshot import pinned_environment, snapshot
from environment import isolated_environment
from s3servers import use_bucket
from sluice.lake.storage import open_lake

pytestmark = [pytest.mark.e2e, pytest.mark.one_day]


@pytest.mark.s3
def test_airflow3_backfill_with_the_lake_on_s3_equals_running_the_batches_one_by_one(
    tmp_path, radosgw, monkeypatch, slack
):
    """The same day backfilled with the whole lake on S3 (radosgw), reached through an
    Airflow AWS connection: the same lake contents and tables as the local lake's. Every
    run is given 2 seconds: the scheduler finds them late, its executor alerts on Slack, and
    a successful run resolves the incident."""
    root = use_bucket(radosgw, monkeypatch)
    connection = {
        "conn_type": "aws",
        "login": radosgw.env["AWS_ACCESS_KEY_ID"],
        "password": radosgw.env["AWS_SECRET_ACCESS_KEY"],
        "extra": {"endpoint_url": radosgw.endpoint, "region_name": "us-east-1"},
    }
    env = {
        **pinned_environment(isolated_environment(tmp_path / "airflow", tmp_path / "data")),
        "SLUICE_LAKE_ROOT": root,
        "SLUICE_AWS_CONN_ID": "sluice_lake",
        "AIRFLOW_CONN_SLUICE_LAKE": json.dumps(connection),
        "AIRFLOW_CONN_SLACK_ALERTS": json.dumps({"conn_type": "slackwebhook", "password": slack.url}),
        "SLUICE_BATCH_LATE_HOURS": str(2 / 3600),
    }
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        env.pop(name)  # the connection alone points Sluice at the bucket
    lake = open_lake(root)
    drop_exports(lake, BATCH_STARTS)
    output = backfill(env, "2026-11-20", "2026-11-21")
    assert output.count("  success") == 12  # the three DAGs, four intervals each
    assert not (tmp_path / "data" / "lake").exists(), "nothing of the lake went to the local folder"
    day = one_by_one()
    assert_same(day["snapshot"], snapshot(tmp_path / "data", lake))
    # the wait for each batch and every model task ran in the triggerer: none was ever
    # queued for a worker
    reports = metadata(
        tmp_path / "airflow",
        "SELECT run_id, state, queued_dttm FROM task_instance WHERE dag_id = 'transform'"
        " AND (task_id LIKE 'wait_for_%' OR task_id LIKE 'dbt.%.run' OR task_id LIKE 'dbt.%.test')",
        [],
    )
    assert len({run_id for run_id, _, _ in reports}) == 4 and len(reports) >= 4 * 22
    assert {(state, queued) for _, state, queued in reports} == {("success", None)}
    # a manual run after the backfill reruns its interval in place: the same run, started again
    before = dag_runs(tmp_path / "airflow", "ingest_faker")
    assert f"Lake:      {root}" in run_batch(env, BATCH_STARTS[1])
    assert_same(day["snapshot"], snapshot(tmp_path / "data", lake))
    assert_one_honest_run_per_interval(tmp_path / "airflow", BATCH_STARTS)
    for start in BATCH_STARTS:
        assert_transform_built(tmp_path / "airflow", start)
    after = dag_runs(tmp_path / "airflow", "ingest_faker")
    assert [run["run_type"] for run in after] == ["backfill"] * 4
    assert after[1]["start_date"] > before[1]["end_date"] and after[2] == before[2]
    # each DAG's late runs are one incident at a time, resolved by its last successful run
    headlines = [text.split("*")[1] for text in slack.texts() if "Batch late" in text]
    for dag_id in ("ingest_faker", "transform"):
        mine = [headline for headline in headlines if headline.endswith(f"Batch late: {dag_id}")]
        assert mine and mine[0] == f"Batch late: {dag_id}" and mine[-1] == f"Resolved: Batch late: {dag_id}", headlines
        assert all(first != second for first, second in itertools.pairwise(mine)), headlines  # never twice in a row


@pytest.mark.airflow2
def test_airflow2_backfill_equals_running_the_batches_one_by_one(airflow2_backfill):
    returncode, log = airflow2_backfill.wait(timeout=1800)
    assert returncode == 0, log[-4000:]
    assert log.count("on Airflow 2.11") == 3 and log.count("all runs succeeded") == 3
    assert_same(one_by_one()["snapshot"], snapshot(airflow2_backfill.data_dir))
