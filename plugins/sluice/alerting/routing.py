"""Who is mentioned, and in which channel, for an alert about a source or a dbt model.

A source declares it in ``include/sources/<name>.yml`` and a dbt model (or dbt source)
in its ``meta``::

    meta: {owner: "<!subteam^S0123ABC>", channel: "#shop-data"}

What neither names comes from the platform defaults (``SLUICE_SLACK_OWNER``,
``SLUICE_SLACK_CHANNEL``). Looked up only when an alert is sent: the manifest is read
then, never while the DAG folder is parsed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sluice.core import config
from sluice.core.dbt_manifest import models as manifest_models
from sluice.core.dbt_manifest import node_meta

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """Where an alert goes.

    :param channel: the Slack channel (None: the webhook's own channel)
    :param owner: who is mentioned, as Slack writes it (None: nobody)
    """

    channel: str | None = None
    owner: str | None = None


def route_for(*, source: str | None = None, model: str | None = None, dag: Any = None, task: Any = None) -> Route:
    """The route of an alert about ``model`` or ``source``; without them, the dbt model a
    Cosmos ``task`` runs or tests (``dbt.<model>.run``), else the source ``dag`` is tagged
    with (``source:<name>``)."""
    meta: Mapping[str, Any] = {}
    try:
        if not model and type(task).__name__.startswith("Dbt"):
            model = _model_of_task(task.task_id)
        source = source or _source_of_dag(dag)
        if model:
            meta = _model_meta(model)
        if source and not meta:
            meta = _source_meta(source)
    except Exception:  # a broken declaration must not cost the alert: use the defaults
        log.exception("could not read the alert route of source=%s model=%s", source, model)
    return Route(
        channel=_text(meta.get("channel")) or config.slack_channel(),
        owner=_text(meta.get("owner")) or config.slack_owner(),
    )


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value else None


def _source_of_dag(dag: Any) -> str | None:
    tags: Iterable[str] = getattr(dag, "tags", None) or ()
    return next((tag.split(":", 1)[1] for tag in tags if tag.startswith("source:")), None)


def _source_meta(name: str) -> Mapping[str, Any]:
    from sluice.core.sources import SourceConfigError, load_source

    try:
        meta = load_source(name).meta
    except SourceConfigError:
        meta = {}
    # a dbt source of the same name may carry the meta instead
    return meta or _manifest(str(_manifest_path()))["sources"].get(name, {})


def _model_meta(name: str) -> Mapping[str, Any]:
    return _manifest(str(_manifest_path()))["models"].get(name, {})


def _model_of_task(task_id: str) -> str | None:
    """The dbt model named in a Cosmos task's id (``dbt.<model>.run``, ``dbt.<model>.test``)."""
    models = _manifest(str(_manifest_path()))["models"]
    parts = task_id.split(".")
    return next((part for part in reversed(parts) if part in models), None)


def _manifest_path() -> Path:
    return config.dbt_manifest_path()


@lru_cache(maxsize=2)
def _manifest(path: str) -> dict[str, dict[str, Mapping[str, Any]]]:
    """The ``meta`` of every model and dbt source in the manifest (empty without one)."""
    try:
        with open(path) as file:
            manifest = json.load(file)
    except FileNotFoundError:
        return {"models": {}, "sources": {}}
    models = {node["name"]: node_meta(node) for node in manifest_models(manifest).values()}
    sources: dict[str, Mapping[str, Any]] = {}
    for node in manifest.get("sources", {}).values():
        meta = {**(node.get("source_meta") or {}), **(node.get("meta") or {})}
        if meta.get("owner") or meta.get("channel"):
            sources.setdefault(node["source_name"], meta)
    return {"models": models, "sources": sources}
