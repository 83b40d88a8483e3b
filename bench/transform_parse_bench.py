"""Parse time of the transform DAG per dbt node, on the real manifest and a larger one.

The larger project is synthetic: the real manifest's models and tests cloned under new
names (``<name>__s<k>``) until there are about as many models as asked for, each clone's
dependencies pointing at the clones of the same copy (sources stay shared). It is
written to a temporary manifest.json that ``SLUICE_DBT_MANIFEST`` points to, so the DAG
file renders it exactly as it renders the real one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from common import ROOT, BenchmarkError, make_env, median
from parse_bench import DAGS, parse_once

TRANSFORM_DAG = DAGS / "transform.py"
#: Manifest resources that Cosmos turns into tasks (or folds into a model's task).
NODE_TYPES = frozenset({"model", "test", "seed", "snapshot"})


def manifest_path(env: dict[str, str]) -> Path:
    """The manifest the DAG file renders, under ``env`` (as ``sluice.core.config`` resolves it)."""
    if env.get("SLUICE_DBT_MANIFEST"):
        return Path(env["SLUICE_DBT_MANIFEST"])
    project = Path(env.get("SLUICE_DBT_PROJECT_DIR") or ROOT / "dbt_project")
    return project / "target" / "manifest.json"


def dbt_nodes(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The project's own models, tests, seeds and snapshots."""
    project = manifest["metadata"].get("project_name")
    return {
        unique_id: node
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] in NODE_TYPES and node.get("package_name", project) == project
    }


def _renamed(unique_id: str, suffix: str) -> str:
    """``model.pkg.name`` -> ``model.pkg.name<suffix>``; a test's hash part stays last."""
    parts = unique_id.split(".")
    parts[2] += suffix
    return ".".join(parts)


def synthetic_manifest(manifest: dict[str, Any], models: int) -> dict[str, Any]:
    """``manifest`` with its nodes cloned until it has at least ``models`` models.

    Copy 0 is the original; copy ``k`` renames every node ``<name>__s<k>`` and points its
    ``depends_on`` (and a test's ``attached_node``) at the same copy's clones. The
    parent and child maps are rebuilt from the result.
    """
    originals = dbt_nodes(manifest)
    real_models = sum(node["resource_type"] == "model" for node in originals.values())
    if not real_models:
        raise BenchmarkError("the manifest has no model to clone")
    copies = math.ceil(models / real_models)
    nodes = dict(manifest["nodes"])
    for k in range(1, copies):
        suffix = f"__s{k}"
        mapping = {unique_id: _renamed(unique_id, suffix) for unique_id in originals}
        for unique_id, node in originals.items():
            clone = json.loads(json.dumps(node))
            clone["unique_id"] = mapping[unique_id]
            clone["name"] = node["name"] + suffix
            if clone.get("alias"):
                clone["alias"] = node["alias"] + suffix
            if clone.get("fqn"):
                clone["fqn"] = [*node["fqn"][:-1], node["fqn"][-1] + suffix]
            depends_on = clone.setdefault("depends_on", {})
            depends_on["nodes"] = [mapping.get(parent, parent) for parent in depends_on.get("nodes", [])]
            if clone.get("attached_node"):
                clone["attached_node"] = mapping.get(clone["attached_node"], clone["attached_node"])
            nodes[clone["unique_id"]] = clone
    parent_map = {unique_id: list(node.get("depends_on", {}).get("nodes", [])) for unique_id, node in nodes.items()}
    child_map: dict[str, list[str]] = {unique_id: [] for unique_id in [*nodes, *manifest.get("sources", {})]}
    for unique_id, parents in parent_map.items():
        for parent in parents:
            child_map.setdefault(parent, []).append(unique_id)
    return {**manifest, "nodes": nodes, "parent_map": parent_map, "child_map": child_map}


def _parse_runs(env: dict[str, str], repeats: int) -> list[dict[str, Any]]:
    return [parse_once(TRANSFORM_DAG, env) for _ in range(repeats)]


def _figures(prefix: str, runs: list[dict[str, Any]], nodes: int) -> dict[str, Any]:
    cold = median([run["cold_seconds"] for run in runs])
    warm = median([run["warm_seconds"] for run in runs])
    return {
        f"{prefix}_ms_per_node": cold * 1000 / nodes,
        f"{prefix}_warm_ms_per_node": warm * 1000 / nodes,
        f"{prefix}_seconds": cold,
        f"{prefix}_warm_seconds": warm,
        f"{prefix}_nodes": nodes,
        f"{prefix}_tasks": runs[0]["task_count"],
    }


def bench_transform_parse(repeats: int = 3, models: int = 250) -> dict[str, Any]:
    """Cold DagBag fill of dags/transform.py in fresh processes, per dbt node.

    Medians of ``repeats`` processes each, on the real manifest, then on a synthetic
    project of about ``models`` models with their tests.
    """
    env = make_env()
    real = json.loads(manifest_path(env).read_text())
    real_nodes = len(dbt_nodes(real))
    result = _figures("transform_parse", _parse_runs(env, repeats), real_nodes)
    synthetic = synthetic_manifest(real, models)
    with tempfile.TemporaryDirectory(prefix="sluice-bench-manifest-") as tmp:
        path = Path(tmp) / "manifest.json"
        path.write_text(json.dumps(synthetic))
        synthetic_runs = _parse_runs({**env, "SLUICE_DBT_MANIFEST": str(path)}, repeats)
        manifest_mb = os.path.getsize(path) / (1024 * 1024)
    nodes = dbt_nodes(synthetic)
    figures = _figures("transform_parse_synthetic", synthetic_runs, len(nodes))
    if figures["transform_parse_synthetic_tasks"] <= result["transform_parse_tasks"]:
        raise BenchmarkError("the synthetic manifest did not add tasks to the transform DAG: was it read?")
    result.update(figures)
    result["transform_parse_synthetic_models"] = sum(node["resource_type"] == "model" for node in nodes.values())
    result["transform_parse_synthetic_manifest_mb"] = manifest_mb
    result["transform_parse_repeats"] = repeats
    return result
