"""Accuracy: totals that must agree across layers, declared in a dbt model's ``meta``.

::

    models:
      - name: revenue_per_customer
        config:
          meta:
            accuracy:
              - name: gross_revenue
                total: sum(gross_revenue)
                equals:
                  model: fct_purchases
                  total: sum(case when status in ('purchased', 'returned') then amount else 0 end)
                tolerance: 0.0001     # relative difference allowed (default 0)
                blocking: false

After the build, ``total`` is computed over the model's table and ``equals.total`` over the
other model's; their relative difference (``|a - b| / |b|``) above ``tolerance`` is an
error. The totals are SQL aggregates run as written, on DuckDB and on Snowflake alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sluice.checks.results import CheckResult, CheckRun
from sluice.core.dbt_manifest import models as manifest_models
from sluice.core.dbt_manifest import node_meta
from sluice.core.thresholds import CheckConfigError, Threshold

META_KEY = "accuracy"
_RULE_KEYS = {"name", "total", "equals", "tolerance", "blocking"}


@dataclass(frozen=True)
class AccuracyRule:
    """Two totals that must agree.

    :param model: the model declaring it (``model.sluice.revenue_per_customer``)
    :param relation: its table (``marts.revenue_per_customer``)
    :param name: names the figure (``gross_revenue``)
    :param total: SQL aggregate over ``relation``
    :param other_model: the model it must agree with
    :param other_relation: that model's table
    :param other_total: SQL aggregate over ``other_relation``
    :param threshold: ``error_above`` the tolerance (relative difference)
    """

    model: str
    relation: str
    name: str
    total: str
    other_model: str
    other_relation: str
    other_total: str
    threshold: Threshold


def _relation(node: Mapping[str, Any]) -> str:
    return f"{node['schema']}.{node.get('alias') or node['name']}"


def accuracy_rules(manifest: Mapping[str, Any]) -> list[AccuracyRule]:
    """Every rule declared in the models' ``meta.accuracy``.

    :raises CheckConfigError: a rule missing a key, with an unknown one, a tolerance that is
        no number, or naming a model the project does not have
    """
    models = manifest_models(manifest)
    by_name = {node["name"]: unique_id for unique_id, node in models.items()}
    rules = []
    for unique_id, node in sorted(models.items()):
        meta = node_meta(node)
        declared = meta.get(META_KEY)
        if declared is None:
            continue
        where = f"dbt model {node['name']}: meta.{META_KEY}"
        if not isinstance(declared, list):
            raise CheckConfigError(f"{where} must be a list of rules ({{name, total, equals: {{model, total}}}})")
        for rule in declared:
            if not isinstance(rule, Mapping):
                raise CheckConfigError(f"{where}: each rule is a mapping, not {rule!r}")
            here = f"{where} {rule.get('name', '?')!r}"
            if unknown := sorted(set(rule) - _RULE_KEYS):
                raise CheckConfigError(f"{here} has unknown key(s) {unknown}; a rule takes {sorted(_RULE_KEYS)}")
            equals = rule.get("equals")
            missing = [key for key in ("name", "total", "equals") if not rule.get(key)]
            if not isinstance(equals, Mapping) or not equals.get("model") or not equals.get("total"):
                missing.append("equals: {model, total}")
            if missing:
                raise CheckConfigError(f"{here} lacks {', '.join(missing)}")
            other = by_name.get(equals["model"])
            if other is None:
                raise CheckConfigError(f"{here}: equals.model {equals['model']!r} is no model of the project")
            tolerance = rule.get("tolerance", 0)
            if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or tolerance < 0:
                raise CheckConfigError(f"{here}: tolerance is a relative difference of at least 0, not {tolerance!r}")
            blocking = rule.get("blocking", False)
            if not isinstance(blocking, bool):
                raise CheckConfigError(f"{here}: blocking must be true or false, not {blocking!r}")
            rules.append(
                AccuracyRule(
                    model=unique_id,
                    relation=_relation(node),
                    name=str(rule["name"]),
                    total=str(rule["total"]),
                    other_model=other,
                    other_relation=_relation(models[other]),
                    other_total=str(equals["total"]),
                    threshold=Threshold(error_above=float(tolerance), blocking=blocking),
                )
            )
    return rules


def _total(cursor: Any, rule: AccuracyRule, total: str, relation: str) -> float:
    sql = f"SELECT {total} FROM {relation}"
    try:
        cursor.execute(sql)
        value = cursor.fetchone()[0]
    except Exception as error:
        raise RuntimeError(f"accuracy rule {rule.name!r} of {rule.relation}: `{sql}` failed: {error}") from error
    return float(value or 0)


def check_accuracy(
    rules: Iterable[AccuracyRule],
    connection: Any,
    *,
    skipped_models: Iterable[str] = (),
    now: datetime | None = None,
    dag_id: str = "",
    batch: str = "",
) -> list[CheckResult]:
    """Compute both totals of every rule; one result per rule (``relative_difference:<name>``).

    :param skipped_models: models the run did not build (stale inputs): their rules are left
        out, since a table of the previous batch would be compared with one of this batch
    """
    now = now or datetime.now(UTC)
    skipped = set(skipped_models)
    run = CheckRun(checked_at=now, dag_id=dag_id, batch=batch)
    cursor = connection.cursor()
    try:
        for rule in rules:
            if {rule.model, rule.other_model} & skipped:
                continue
            total = _total(cursor, rule, rule.total, rule.relation)
            other = _total(cursor, rule, rule.other_total, rule.other_relation)
            difference = abs(total - other) / abs(other) if other else (0.0 if total == other else 1.0)
            status, bound = rule.threshold.judge(difference)
            detail = (
                f"{rule.name}: {total:,.2f} in {rule.relation}, {other:,.2f} in {rule.other_relation}"
                f" (relative difference {difference:.4%}, tolerance {rule.threshold.error_above:.4%})"
            )
            run.record(
                "accuracy",
                f"relative_difference:{rule.name}",
                difference,
                detail,
                threshold=bound,
                status=status,
                blocking=rule.threshold.blocking,
                table_name=rule.relation,
            )
    finally:
        cursor.close()
    return run.results
