"""The personal-data registry: declarations in source YAML and dbt meta, checked."""

from __future__ import annotations

import copy

import pytest

from sluice.core.sources import SourceConfigError, load_source, source_names
from sluice.erasure.registry import RegistryError, model_tables, personal_tables, undeclared_models


@pytest.fixture(scope="module")
def manifest():
    from sluice.core.dbt_manifest import load_manifest

    return load_manifest()


def test_every_table_holding_personal_data_is_declared_with_its_identifiers(manifest):
    tables = {(t.store, t.name): t for t in personal_tables(manifest)}
    users = tables["lake", "faker/users"]
    assert (users.subject_key, dict(users.identifiers)) == ("email", {"email": "email", "id": "user_id"})
    assert "telephone" in users.pii and ("warehouse", "bronze.faker__users") in tables
    assert dict(tables["lake", "faker/purchases"].identifiers) == {"user_id": "user_id"}
    marts = tables["warehouse", "marts.revenue_per_customer"]
    assert dict(marts.identifiers) == {"customer_id": "user_id", "email": "email"} and marts.kind == "table"
    assert tables["warehouse", "bronze.stg_faker__users"].kind == "view"
    assert not any("product" in name for _, name in tables), "products hold no personal data"


def test_a_model_built_from_personal_data_without_a_declaration_fails(manifest):
    sources = [load_source(name) for name in source_names()]
    assert undeclared_models(manifest, sources) == []
    changed = copy.deepcopy(manifest)
    node = copy.deepcopy(changed["nodes"]["model.sluice.dim_customers"])
    node.update(name="customer_emails", unique_id="model.sluice.customer_emails", meta={}, config={"meta": {}})
    node["depends_on"] = {"nodes": ["model.sluice.customers"]}
    changed["nodes"]["model.sluice.customer_emails"] = node
    assert undeclared_models(changed, sources) == ["customer_emails"]
    with pytest.raises(RegistryError, match=r"\['customer_emails'\] are built from personal data"):
        personal_tables(changed)
    node["config"]["meta"] = {"personal": False}
    assert undeclared_models(changed, sources) == []


def test_malformed_declarations_are_refused(manifest, tmp_path):
    changed = copy.deepcopy(manifest)
    meta = changed["nodes"]["model.sluice.dim_customers"]["config"]["meta"]
    meta["pii"] = ["customer_name", "shoe_size"]
    with pytest.raises(RegistryError, match=r"dim_customers: meta names columns the model does not have: \['shoe_"):
        model_tables(changed)
    meta.update(pii=[], identifiers={"email": "email"})
    with pytest.raises(RegistryError, match="the subject key included"):
        model_tables(changed)
    for text, message in {
        "streams:\n  s: {record_key: id, pii: [email]}\n": "declares personal data but no subject_key",
        "streams:\n  s: {record_key: id, subject_key: id, identifiers: [id]}\n": "identifiers maps columns",
        "streams:\n  s: {record_key: id, subject_key: id, pii: email}\n": "pii lists the columns",
        "streams:\n  s: {record_key: id, subjectkey: id}\n": r"unknown keys \['subjectkey'\]",
    }.items():
        (tmp_path / "bad.yml").write_text("connector: source-x\n" + text)
        with pytest.raises(SourceConfigError, match=message):
            load_source("bad", tmp_path)
