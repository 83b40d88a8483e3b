"""The dbt project as one Cosmos task group, rendered from the manifest.

Rendering reads ``target/manifest.json`` only: parsing the DAG folder never starts dbt.
Every model is its own task followed by its tests (``TestBehavior.BUILD``); a test
spanning several models runs once all of them are built, across layers, which is why the
whole project is one group rather than one group per layer. Incremental models get the
run's batch window (``SLUICE_BATCH_START``/``SLUICE_BATCH_END``, read by the
``sluice_batch_window`` macro), so a backfill reprocesses exactly its intervals.

Two ways of running it (``SLUICE_DBT_EXECUTION``):

- ``watcher`` (default): one ``dbt build`` of the whole project (Cosmos' producer task)
  runs first; then every model's task at once reads that model's outcome from the build. The
  model tasks only report, so they neither hold the warehouse nor start dbt again; on
  Airflow 3 they do it from the triggerer (:class:`~sluice.transform.cosmos_watcher.ReportTrigger`).
  dbt runs as a subprocess: in-process, every outcome Cosmos records (an XCom write
  through the Execution API) stopped dbt until it was written.
- ``local``: each model's task runs ``dbt build`` on its model (one dbt invocation per
  model).
"""

from __future__ import annotations

import functools
from typing import Any

from sluice.core import config
from sluice.core.batch import BATCH_END_TEMPLATE, BATCH_ID_TEMPLATE
from sluice.core.dbt_manifest import manifest_path

PROFILE_NAME = "sluice"


def dbt_task_group(group_id: str = "dbt", freshness_task_id: str | None = None, **kwargs: Any):
    """A ``DbtTaskGroup`` running every model of the project, tests after each.

    :param freshness_task_id: a :class:`~sluice.checks.operators.FreshnessCheckOperator`
        upstream of the group: what its plan names as built from stale tables is left out
        of the build and its tasks are skipped, saying which table is late
    """
    from cosmos import DbtTaskGroup, ExecutionConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

    manifest = manifest_path()
    project_dir = config.dbt_project_dir()
    project = ProjectConfig(
        dbt_project_path=project_dir, manifest_path=manifest, project_name="sluice", install_dbt_deps=False
    )
    # Cosmos wraps the path in ObjectStoragePath, whose first use registers every
    # provider's filesystem (boto3 included): ~0.4 s per parse for a local file.
    project.manifest_path = manifest
    watcher = config.dbt_execution() == "watcher"
    operator_args: dict[str, Any] = {
        # the window as environment, not --vars: changed vars make dbt parse the project again
        "env": {
            "SLUICE_WAREHOUSE_PATH": str(config.warehouse_path()),
            "SLUICE_BATCH_START": BATCH_ID_TEMPLATE,
            "SLUICE_BATCH_END": BATCH_END_TEMPLATE,
            # plain task logs: dbt colours its messages even in JSON
            "DBT_USE_COLORS": "false",
        },
        "append_env": True,
        "pool": config.WAREHOUSE_POOL,
    }
    if watcher:
        # model tasks read the build's outcome once it is done: no waiting in the triggerer;
        # one that waits for an upstream task's retries gives its worker slot back meanwhile
        operator_args.update(deferrable=False, poke_interval=5, mode="reschedule")
    if freshness_task_id:
        from sluice.checks.operators import skip_if_built_from_stale

        # a model built from a stale table is skipped, saying which table is late
        operator_args["pre_execute"] = functools.partial(skip_if_built_from_stale, freshness_task_id=freshness_task_id)
    group = DbtTaskGroup(
        group_id=group_id,
        project_config=project,
        profile_config=profile_config(),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER if watcher else ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.SUBPROCESS if watcher else InvocationMode.DBT_RUNNER,
            dbt_executable_path=str(config.dbt_executable()),
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            # the watcher's build runs the tests; each model's tests then get their own task
            test_behavior=TestBehavior.AFTER_EACH if watcher else TestBehavior.BUILD,
            # a test on several models (relationships) runs once all of them are built; the
            # watcher's build orders it itself and reports it with its models' tests
            should_detach_multiple_parents_tests=not watcher,
            # per-model datasets are not used, and Airflow 2.11 fails to record their aliases
            emit_datasets=False,
            # dbt's unit tests check the SQL, not the data: they run with the test suite
            # (tests/dbt), not in every batch, as dbt advises for production builds
            exclude=["resource_type:unit_test"],
        ),
        operator_args=operator_args,
        **kwargs,
    )
    if watcher:
        _run_models_after_the_build(group, freshness_task_id)
    return group


def the_build(group: Any) -> Any:
    """What has built every model of ``group`` once it is done: the watcher's one ``dbt
    build`` task, or (each model its own ``dbt build``) the whole group."""
    from cosmos.constants import PRODUCER_WATCHER_TASK_ID

    return next((task for task in group if task.task_id.endswith(f".{PRODUCER_WATCHER_TASK_ID}")), group)


def profile_config() -> Any:
    """dbt's profile for ``SLUICE_WAREHOUSE``: the project's DuckDB one, or Snowflake's from
    the Airflow connection (:meth:`sluice.warehouse.target.Warehouse.dbt_profile`)."""
    from cosmos import ProfileConfig

    from sluice.warehouse.target import current

    return ProfileConfig(profile_name=PROFILE_NAME, **current().dbt_profile())


def _run_models_after_the_build(group: Any, freshness_task_id: str | None = None) -> None:
    """Order the watcher group: the one ``dbt build`` first, then every model task at once.

    Cosmos starts the model tasks beside the build, each waiting in a worker slot or the
    triggerer for its model, and in dbt's order: one scheduler hop per layer and per
    model's tests, each costing more than the task's work (reading an XCom). Here every
    model task hangs on the build alone and runs once it is done, failed or not
    (``one_done``): a model that built shows success at once, a failed one fails, and one
    dbt did not build because something upstream failed is skipped, naming it
    (:class:`~sluice.transform.cosmos_watcher.ModelReport`). A build that never ran (its
    inputs are not ready) skips them all. Only the build writes to the warehouse, so only
    it takes the warehouse pool.
    """
    from cosmos.constants import PRODUCER_WATCHER_DONE_TASK_ID, PRODUCER_WATCHER_TASK_ID

    from sluice.transform.cosmos_watcher import make_build_task, report_after_the_build

    producer = the_build(group)
    if producer is group:
        raise RuntimeError(f"Cosmos rendered no {PRODUCER_WATCHER_TASK_ID} task in {group.group_id}")
    done = next((task for task in group if task.task_id.endswith(f".{PRODUCER_WATCHER_DONE_TASK_ID}")), None)
    models = [task for task in group if task is not producer and task is not done]
    # a retried build is skipped by Cosmos, which would skip every model; the model tasks
    # retry instead, each by running its own model, and a cleared build builds again
    make_build_task(producer, freshness_task_id)
    for task in models:
        report_after_the_build(task, producer)
        task.pool = "default_pool"
    if done is not None:
        done.pool = "default_pool"
