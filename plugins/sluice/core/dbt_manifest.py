"""The dbt project's manifest (``target/manifest.json``, made by ``dbt parse``): read here, once
per caller, never by running dbt."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sluice.core import config


class ManifestMissingError(FileNotFoundError):
    """``dbt parse`` has not been run (``make dbt-manifest``)."""


def manifest_path() -> Path:
    """Where the manifest is read (``SLUICE_DBT_MANIFEST``), checked to exist."""
    path = config.dbt_manifest_path()
    if not path.is_file():
        raise ManifestMissingError(f"no dbt manifest at {path}: run `make dbt-manifest`")
    return path


def load_manifest(path: Path | None = None) -> dict[str, Any]:
    return json.loads((path or manifest_path()).read_text())


def node_meta(node: Mapping[str, Any]) -> dict[str, Any]:
    """A node's ``meta``: what its YAML declares, under what its ``config`` declares."""
    return {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}


def models(manifest: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Unique id -> node, of every model."""
    return {
        unique_id: node
        for unique_id, node in (manifest.get("nodes") or {}).items()
        if node.get("resource_type") == "model"
    }
