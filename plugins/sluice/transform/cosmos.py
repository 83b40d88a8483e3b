"""The dbt project as one Cosmos task group, rendered from the manifest.

Rendering reads ``target/manifest.json`` only: parsing the DAG folder never starts dbt.
Each model becomes one task running `dbt build` on it (the model, then its tests); a test spanning several
models runs once all of them are built, across layers, which is why the whole project
is one group rather than one group per layer. Incremental models get the run's batch
window as the dbt vars ``batch_start``/``batch_end``, so a backfill reprocesses exactly
its intervals.
"""

from __future__ import annotations

import os
from typing import Any

from sluice import config
from sluice.batch import BATCH_END_TEMPLATE, BATCH_ID_TEMPLATE

PROFILE_NAME = "sluice"


class ManifestMissingError(FileNotFoundError):
    pass


def dbt_target() -> str:
    return os.environ.get("SLUICE_DBT_TARGET", "duckdb")


def dbt_task_group(group_id: str = "dbt", **kwargs: Any):
    """A ``DbtTaskGroup`` running every model of the project, tests after each."""
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

    manifest = config.dbt_manifest_path()
    if not manifest.is_file():
        raise ManifestMissingError(f"dbt manifest not found at {manifest}: run `make dbt-manifest` first")
    project_dir = config.dbt_project_dir()
    project = ProjectConfig(
        dbt_project_path=project_dir, manifest_path=manifest, project_name="sluice", install_dbt_deps=False
    )
    # Cosmos wraps the path in ObjectStoragePath, whose first use registers every
    # provider's filesystem (boto3 included): ~0.4 s per parse for a local file.
    project.manifest_path = manifest
    return DbtTaskGroup(
        group_id=group_id,
        project_config=project,
        profile_config=ProfileConfig(
            profile_name=PROFILE_NAME,
            target_name=dbt_target(),
            profiles_yml_filepath=project_dir / "profiles.yml",
        ),
        execution_config=ExecutionConfig(execution_mode=ExecutionMode.LOCAL, invocation_mode=InvocationMode.DBT_RUNNER),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.BUILD,
            # a test on several models (relationships) runs once all of them are built
            should_detach_multiple_parents_tests=True,
            # per-model datasets are not used, and Airflow 2.11 fails to record their aliases
            emit_datasets=False,
        ),
        operator_args={
            "vars": {"batch_start": BATCH_ID_TEMPLATE, "batch_end": BATCH_END_TEMPLATE},
            "env": {"SLUICE_WAREHOUSE_PATH": str(config.warehouse_path())},
            "append_env": True,
            "pool": config.WAREHOUSE_POOL,
        },
        **kwargs,
    )
