"""Cluster policy: the conventions every DAG in the folder must follow.

Wired in through ``airflow_local_settings.py``; a DAG that breaks a rule fails to load
and shows up as an import error naming the rule, instead of running half-configured.
"""

from __future__ import annotations

from typing import Any

from sluice.alerting.settings import deadlines_watched

MIN_RETRIES = 2
MAX_ACTIVE_RUNS_LIMIT = 4
FORBIDDEN_OWNERS = {"", "airflow"}
#: Operators whose retries are made by other tasks, with who makes them.
RETRIED_ELSEWHERE = {
    # the transform's one dbt build (Cosmos' watcher); each model's task retries by running its model
    "DbtBuildOperator": "the model tasks",
}


def dag_violations(dag: Any) -> list[str]:
    """Every broken convention of ``dag``, as readable sentences (empty when fine)."""
    problems = []
    if not (dag.doc_md or "").strip():
        problems.append("has no doc_md")
    if not dag.tags:
        problems.append("has no tags")
    if dag.catchup:
        problems.append("has catchup=True (backfill explicitly instead)")
    if not dag.max_active_runs or dag.max_active_runs > MAX_ACTIVE_RUNS_LIMIT:
        problems.append(f"max_active_runs={dag.max_active_runs} (must be 1..{MAX_ACTIVE_RUNS_LIMIT})")
    scheduled = getattr(dag, "timetable", None) is not None and getattr(dag.timetable, "can_be_scheduled", False)
    late_alert = getattr(dag, "deadline", None) or getattr(dag, "sla_miss_callback", None)
    if scheduled and deadlines_watched() and not late_alert:
        problems.append("has no late-run alert (deadline on Airflow 3, sla_miss_callback on 2.11)")
    for task in dag.tasks:
        if not task.on_failure_callback:
            problems.append(f"task {task.task_id} has no on_failure_callback (failures would go unannounced)")
        if (task.owner or "").strip().lower() in FORBIDDEN_OWNERS:
            problems.append(f"task {task.task_id} has no owner")
        if (task.retries or 0) < MIN_RETRIES and type(task).__name__ not in RETRIED_ELSEWHERE:
            problems.append(f"task {task.task_id} has retries={task.retries} (< {MIN_RETRIES})")
        if not task.retry_exponential_backoff:
            problems.append(f"task {task.task_id} retries without exponential backoff")
    return problems


def dag_policy(dag: Any) -> None:
    from airflow.exceptions import AirflowClusterPolicyViolation

    problems = dag_violations(dag)
    if problems:
        raise AirflowClusterPolicyViolation(f"DAG {dag.dag_id}: " + "; ".join(problems))
