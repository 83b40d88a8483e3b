"""The driver contract (sluice.ingest.contract), the same tests over every driver.

Given a source and a batch, a driver publishes a landing whose counts reconcile (read =
landed + quarantined + suppressed); the shared pipeline commits it. A rerun replaces the
batch; a landing killed half-way leaves nothing visible and its retry lands the batch
once; what cannot be landed is kept under quarantine/ with its reason; erased people stay
erased. A new driver gets a harness in tests/driver_harness.py and these tests.
"""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from driver_harness import AirbyteHarness, FilesHarness, LocalHarness, purchases, users
from sluice.ingest.commit import commit_batch
from sluice.ingest.contract import ContractError, check_landing
from sluice.ingest.landing import manifest_path
from sluice.lake.files import BATCH_COLUMN, bronze_table

BATCH = "20261120T000000Z"
RECORDS = {"users": users(7), "purchases": purchases(11, 7)}
METADATA = ("_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta")


@pytest.fixture(scope="module")
def standin(moto_s3):
    from airbyte_standin import AirbyteStandin

    server = AirbyteStandin(env={**os.environ, **moto_s3.env})
    yield server
    server.close()


@pytest.fixture(params=["local", "airbyte", "files"])
def driver(request, tmp_path, monkeypatch):
    if request.param == "local":
        harness = LocalHarness(tmp_path, monkeypatch)
    elif request.param == "files":
        harness = FilesHarness(tmp_path, monkeypatch)
    else:
        harness = AirbyteHarness(
            tmp_path, monkeypatch, request.getfixturevalue("standin"), request.getfixturevalue("moto_s3")
        )
    harness.script(RECORDS)
    return harness


def commit(driver, batch=BATCH) -> dict[str, dict]:
    source = driver.source()
    return {stream.name: commit_batch(source.name, stream, batch, driver.lake) for stream in source.streams}


def batch_rows(driver, stream: str, batch=BATCH) -> pa.Table:
    table = bronze_table(driver.lake, "shop", stream)
    return table.to_pyarrow_dataset().to_table(filter=pc.field(BATCH_COLUMN) == batch)


def quarantined(lake, batch: str) -> dict[str, str]:
    """The batch's files under quarantine/shop/, as text (Parquet files: their rows)."""
    from pyarrow.fs import FileSelector, FileType

    selector = FileSelector(lake.path("quarantine", "shop"), recursive=True, allow_not_found=True)
    kept = {}
    for info in lake.fs.get_file_info(selector):
        if info.type != FileType.File or batch not in info.path:
            continue
        if info.path.endswith(".parquet"):
            kept[info.path] = json.dumps(pq.read_table(info.path, filesystem=lake.fs).to_pylist(), default=str)
        else:
            kept[info.path] = lake.read_bytes(info.path).decode()
    return kept


def test_a_batch_lands_with_counts_that_reconcile_and_the_pipeline_commits_it(driver):
    manifests = driver.land(BATCH)
    for name, expected in (("users", 7), ("purchases", 11)):
        manifest = manifests[name]
        check_landing(manifest)
        assert (manifest["read"], manifest["landed"], manifest["quarantined"]) == (expected, expected, 0)
    committed = commit(driver)
    for name, expected in (("users", 7), ("purchases", 11)):
        rows = batch_rows(driver, name)
        assert committed[name]["rows"] == rows.num_rows == expected
        assert set(METADATA) <= set(rows.column_names)  # the same lake whichever driver landed it
        assert sorted(rows.column("id").to_pylist()) == list(range(expected))


def test_a_rerun_replaces_the_batch(driver):
    driver.land(BATCH)
    first = commit(driver)
    driver.land(BATCH)
    second = commit(driver)
    for name in ("users", "purchases"):
        rows = batch_rows(driver, name)
        assert rows.num_rows == first[name]["rows"] == second[name]["rows"]
        assert len(set(rows.column("id").to_pylist())) == rows.num_rows  # nothing doubled


def test_a_landing_killed_half_way_leaves_nothing_visible_and_the_retry_lands_once(driver):
    driver.slow()
    driver.land_and_kill(BATCH)
    assert not driver.lake.exists(manifest_path(driver.lake, "shop", "users", BATCH))  # nothing published
    driver.script(RECORDS)
    reads = driver.syncs()
    driver.land(BATCH)
    committed = commit(driver)
    assert committed["users"]["rows"] == 7 and committed["purchases"]["rows"] == 11
    assert sorted(batch_rows(driver, "users").column("id").to_pylist()) == list(range(7))
    if driver.name == "airbyte":  # the retry takes up the killed attempt's job: no second sync
        assert driver.syncs() == reads


def test_what_cannot_be_landed_is_kept_with_its_reason(driver):
    reason = driver.spoil()
    try:
        manifests = driver.land(BATCH)
    except Exception as error:  # a driver may refuse the whole batch: then nothing is published
        assert reason in str(error)
        manifests = {}
    kept = quarantined(driver.lake, BATCH)
    assert kept, "nothing kept under quarantine/"
    assert any(reason in text for text in kept.values()), f"no kept file names the reason {reason!r}: {kept}"
    for name in ("users", "purchases"):
        published = driver.lake.exists(manifest_path(driver.lake, "shop", name, BATCH))
        assert published == (name in manifests)
        if published:
            check_landing(manifests[name])


def test_erased_people_are_not_landed_again(driver):
    from sluice.core import config
    from sluice.lake.index import identifier_hashes
    from sluice.lake.suppression import suppress

    suppress(driver.lake, identifier_hashes({"email": {"u3@example.com"}, "user_id": {"3"}}, config.erasure_salt()))
    manifests = driver.land(BATCH)
    committed = commit(driver)
    users_rows = batch_rows(driver, "users")
    assert 3 not in users_rows.column("id").to_pylist()
    assert 3 not in batch_rows(driver, "purchases").column("user_id").to_pylist()
    for name, erased in (("users", 1), ("purchases", 2)):  # purchases 3 and 10 belong to user 3
        manifest = manifests[name]
        suppressed = manifest["suppressed"] + committed[name]["suppressed"]
        assert suppressed == erased
        assert manifest["read"] == batch_rows(driver, name).num_rows + manifest["quarantined"] + suppressed


def test_a_landing_whose_counts_do_not_add_up_is_refused_before_the_commit(driver):
    manifests = driver.land(BATCH)
    bad = {**manifests["users"], "read": manifests["users"]["read"] + 1}
    with pytest.raises(ContractError, match=r"read 8 != landed 7 \+ quarantined 0 \+ suppressed 0"):
        check_landing(bad)
    driver.lake.write_bytes(manifest_path(driver.lake, "shop", "users", BATCH), json.dumps(bad).encode())
    with pytest.raises(ContractError):
        commit_batch("shop", driver.source().stream("users"), BATCH, driver.lake)
    assert driver.lake.delta_table(driver.lake.path("bronze", "shop", "users")) is None
