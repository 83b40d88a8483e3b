"""A record key of several columns (an export keyed by project and engagement, a composite
primary key): declared as a list, and held through landing, bronze and the checks."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from sluice.checks.metrics import lake_key_figures, measure_stream
from sluice.core.sources import SourceConfig, SourceConfigError, StreamConfig, load_source
from sluice.ingest.commit import commit_batch
from sluice.ingest.landing import BatchLanding, quarantine_folder, read_manifest
from sluice.ingest.schema import stream_schema
from sluice.lake.files import bronze_table

BATCH = "20261120T000000Z"
SCHEMA = {
    "type": "object",
    "properties": {
        "project_id": {"type": "string"},
        "engagement_id": {"type": "integer"},
        "hours": {"type": "number"},
    },
}
ENGAGEMENTS = StreamConfig("engagements", record_key=("project_id", "engagement_id"))


def test_a_declaration_names_one_column_or_a_list(tmp_path):
    (tmp_path / "agency.yml").write_text(
        "connector: source-faker\n"
        "streams:\n"
        "  engagements: {record_key: [project_id, engagement_id]}\n"
        "  clients: {record_key: client_id}\n"
    )
    source = load_source("agency", tmp_path)
    assert source.stream("engagements").record_key == ("project_id", "engagement_id")
    assert source.stream("engagements").key_name == "project_id, engagement_id"
    assert source.stream("clients").record_key == ("client_id",)
    (tmp_path / "empty.yml").write_text("connector: source-faker\nstreams:\n  e: {record_key: []}\n")
    with pytest.raises(SourceConfigError, match="stream 'e'"):
        load_source("empty", tmp_path)


def land(lake, records):
    landing = BatchLanding(lake, "agency", BATCH, {"engagements": (ENGAGEMENTS, stream_schema(SCHEMA))})
    landing.add_all({"stream": "engagements", "data": data, "emitted_at": 1_800_000_000_000} for data in records)
    landing.publish(state=[])
    return commit_batch("agency", ENGAGEMENTS, BATCH, lake)


def test_a_record_missing_any_key_column_is_quarantined_and_duplicates_count_whole_keys(local_lake):
    records = [
        {"project_id": "P-001", "engagement_id": 1, "hours": 2.0},
        {"project_id": "P-001", "engagement_id": 2, "hours": 3.0},  # same project, another engagement
        {"project_id": "P-002", "engagement_id": 1, "hours": 1.0},  # same engagement id, another project
        {"project_id": "P-002", "engagement_id": 1, "hours": 1.5},  # a true duplicate
        {"project_id": "P-003", "hours": 4.0},  # half a key
    ]
    committed = land(local_lake, records)
    manifest = read_manifest(local_lake, "agency", "engagements", BATCH)
    assert (manifest["read"], manifest["landed"], manifest["quarantined"]) == (5, 4, 1)
    assert committed["rows"] == 4
    quarantined = pq.read_table(quarantine_folder(local_lake, "agency", "engagements", BATCH), filesystem=local_lake.fs)
    assert quarantined.column("_sluice_reason").to_pylist() == ["record key 'project_id, engagement_id' is missing"]
    assert json.loads(quarantined.column("_airbyte_data")[0].as_py())["project_id"] == "P-003"

    figures = lake_key_figures(bronze_table(local_lake, "agency", "engagements"), BATCH, ENGAGEMENTS.record_key)
    assert (figures.rows, figures.keys, figures.distinct) == (4, 4, 3)

    table = bronze_table(local_lake, "agency", "engagements")
    assert table.metadata().configuration["sluice.recordKey"] == "project_id,engagement_id"
    actions = table.get_add_actions(flatten=True)
    # both key columns have statistics, though one is text (other text columns never do)
    assert {"min.project_id", "min.engagement_id"} <= set(actions.schema.names)


def test_the_uniqueness_check_names_the_whole_key(local_lake):
    land(local_lake, [{"project_id": "P-1", "engagement_id": 1}, {"project_id": "P-1", "engagement_id": 1}])
    source = SourceConfig("agency", "", "", "data-platform", (ENGAGEMENTS,))
    results = {r.metric: r for r in measure_stream(local_lake, source, ENGAGEMENTS, BATCH, dag_id="ingest_agency")}
    assert results["duplicate_keys"].value == 1
    assert "(project_id, engagement_id)" in results["duplicate_keys"].detail
