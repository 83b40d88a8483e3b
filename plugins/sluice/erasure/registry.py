"""Where personal data lives: the one registry erasure reads.

Two kinds of declaration feed it, each next to what it describes:

- a source stream (``include/sources/<source>.yml``) declares ``subject_key`` (the
  column naming the person), ``identifiers`` (every column that identifies the person,
  by identifier type, e.g. ``{email: email, id: user_id}``) and ``pii`` (the columns
  holding personal data). It covers the stream's bronze table in the lake and its
  bronze table in the warehouse;
- a dbt model declares the same in its ``meta`` (``{subject_key: customer_id,
  identifiers: {customer_id: user_id, email: email}, pii: [email, ...]}``), or
  ``{personal: false}`` when it holds none though it is built from personal data.

A model built from personal data that declares neither is an error
(:func:`undeclared_models`): a table nobody declared would be missed by erasure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sluice.core.dbt_manifest import load_manifest, node_meta
from sluice.core.sources import SourceConfig, load_source, source_names
from sluice.warehouse.tables import warehouse_table


class RegistryError(ValueError):
    """A personal-data declaration is missing or malformed."""


@dataclass(frozen=True)
class PersonalTable:
    """A table that holds personal data.

    :param store: ``lake`` (a bronze Delta table), ``warehouse``, or ``airbyte`` (the
        warehouse tables an Airbyte connection writes a stream into, found when erasing)
    :param name: ``<source>/<stream>`` in the lake and for ``airbyte``; ``<schema>.<table>``
        in the warehouse
    :param subject_key: the column naming the person
    :param identifiers: column -> identifier type, the subject key among them
    :param pii: columns holding personal data
    :param kind: ``table``, or ``view`` (erased through the tables it reads)
    """

    store: str
    name: str
    subject_key: str
    identifiers: tuple[tuple[str, str], ...]
    pii: tuple[str, ...] = ()
    kind: str = "table"


def stream_tables(sources: Iterable[SourceConfig]) -> list[PersonalTable]:
    """The lake and warehouse bronze tables of every stream with a subject key."""
    tables = []
    for source in sources:
        for stream in source.streams:
            if not stream.subject_key:
                continue
            declared = (stream.subject_key, stream.identifiers, stream.pii)
            bronze = f"bronze.{warehouse_table(source.name, stream.name)}"
            if source.writes_warehouse:
                # bronze is a view over the tables the Airbyte connection writes
                tables.append(PersonalTable("warehouse", bronze, *declared, kind="view"))
                tables.append(PersonalTable("airbyte", f"{source.name}/{stream.name}", *declared))
                continue
            tables.append(PersonalTable("lake", f"{source.name}/{stream.name}", *declared))
            tables.append(PersonalTable("warehouse", bronze, *declared))
    return tables


def _model_table(node: Mapping[str, Any]) -> PersonalTable | None:
    meta = node_meta(node)
    where = f"dbt model {node['name']}"
    if meta.get("personal") is False or "subject_key" not in meta:
        return None
    subject_key = meta["subject_key"]
    identifiers = meta.get("identifiers") or {subject_key: subject_key}
    if not isinstance(identifiers, dict) or subject_key not in identifiers:
        raise RegistryError(f"{where}: meta.identifiers must map columns to identifier types, the subject key included")
    pii = meta.get("pii") or []
    if not isinstance(pii, list):
        raise RegistryError(f"{where}: meta.pii lists the columns that hold personal data")
    documented = set(node.get("columns") or {})
    if documented and (unknown := sorted({*identifiers, *pii} - documented)):
        raise RegistryError(f"{where}: meta names columns the model does not have: {unknown}")
    relation = f"{node['schema']}.{node.get('alias') or node['name']}"
    kind = "view" if (node.get("config") or {}).get("materialized") == "view" else "table"
    return PersonalTable("warehouse", relation, subject_key, tuple(sorted(identifiers.items())), tuple(pii), kind)


def _models(manifest: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {key: node for key, node in manifest["nodes"].items() if node.get("resource_type") == "model"}


def model_tables(manifest: Mapping[str, Any]) -> list[PersonalTable]:
    """The warehouse tables of dbt models whose meta declares personal data."""
    return [table for node in _models(manifest).values() if (table := _model_table(node)) is not None]


def undeclared_models(manifest: Mapping[str, Any], sources: Iterable[SourceConfig]) -> list[str]:
    """Models built, directly or not, from personal data that declare neither personal
    data nor ``personal: false``."""
    personal_sources = {
        (source.name, warehouse_table(source.name, stream.name))
        for source in sources
        for stream in source.streams
        if stream.subject_key
    }
    personal = {
        key
        for key, node in manifest.get("sources", {}).items()
        if (node.get("source_name"), node.get("name")) in personal_sources
    }
    models = _models(manifest)
    undeclared, changed = set(), True
    while changed:  # walk down the lineage until nothing new is found
        changed = False
        for key, node in models.items():
            if key in personal:
                continue
            if any(parent in personal for parent in node.get("depends_on", {}).get("nodes", [])):
                personal.add(key)
                changed = True
                meta = node_meta(node)
                if "subject_key" not in meta and meta.get("personal") is not False:
                    undeclared.add(node["name"])
    return sorted(undeclared)


def personal_tables(manifest: Mapping[str, Any] | None = None) -> list[PersonalTable]:
    """Every declared table holding personal data, lake and warehouse."""
    sources = [load_source(name) for name in source_names()]
    manifest = manifest if manifest is not None else load_manifest()
    if undeclared := undeclared_models(manifest, sources):
        raise RegistryError(
            f"dbt models {undeclared} are built from personal data but declare neither meta.subject_key"
            " nor meta.personal: false"
        )
    return stream_tables(sources) + model_tables(manifest)
