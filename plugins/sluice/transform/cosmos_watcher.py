"""The one adapter to Cosmos' watcher internals: its producer's ``dbt build``, run again whenever
its run is cleared, and its model tasks: reporting all at once after the build, from the
triggerer where the node built, and retried.

Cosmos offers no public hook for either, so this module (and only this one) reaches into
``cosmos.operators._watcher`` and gives the rendered tasks a subclass of their own class;
``tests/unit/test_cosmos_watcher.py`` fails loudly when the pinned Cosmos changes what is used here.
"""

from __future__ import annotations

from typing import Any

from cosmos.operators._watcher.triggerer import WatcherTrigger
from cosmos.operators.watcher import DbtProducerWatcherOperator

from sluice.core.compat import WAITS_IN_THE_TRIGGERER


class DbtBuildOperator(DbtProducerWatcherOperator):
    """Cosmos' watcher producer: one ``dbt build`` of the project that model tasks report on.

    Cosmos skips every attempt after the first, taking it for an Airflow retry, so that
    dbt does not build twice. This task has no retries (its model tasks retry, each by
    running its model), so a later attempt is always a cleared run: ``make run`` of a
    batch that ran before, a backfill reprocessing an interval, or "Clear" in the UI.
    Skipping then would skip every model and report the rerun as done; build instead.

    Cosmos also copies every model's outcome into an Airflow Variable as it goes, for a
    retry to restore. No attempt here restores, and that copy was a third of the build's
    time (one Variable write per outcome, the whole backup each time), so it is off.

    With ``freshness_task_id`` set, the tables that task found stale and everything built
    from them are left out of the build (``--exclude source:<source>.<table>+``).
    """

    freshness_task_id: str | None = None

    def execute(self, context: Any, **kwargs: Any) -> Any:
        from cosmos import settings

        if self.retries:
            raise ValueError(f"{self.task_id}: retries must be 0, the model tasks retry instead")
        ti = context["ti"]
        self._leave_out_stale_inputs(ti)
        attempt, backup = ti.try_number, settings.enable_watcher_reliable_retry
        ti.try_number = 1  # read by the producer's retry check only; restored before returning
        settings.enable_watcher_reliable_retry = False
        try:
            return super().execute(context, **kwargs)
        finally:
            ti.try_number, settings.enable_watcher_reliable_retry = attempt, backup

    def _leave_out_stale_inputs(self, ti: Any) -> None:
        """Exclude the stale tables' descendants, and stop waiting for their tests: a built
        model's tests are reported once the ones that still run are done (a model whose
        tests were all left out has its test task skipped)."""
        from cosmos.operators._watcher.aggregation import get_tests_status_xcom_key
        from cosmos.operators._watcher.state import safe_xcom_push

        plan = ti.xcom_pull(task_ids=self.freshness_task_id) if self.freshness_task_id else None
        stale = (plan or {}).get("exclude") or []
        if not stale:
            return
        self.exclude = " ".join([self.exclude or "", *stale]).strip()
        self.log.warning("Stale inputs, left out of the build with what is built from them: %s", " ".join(stale))
        left_out = set(plan.get("tests_left_out") or [])
        for model, tests in list(self.tests_per_model.items()):
            kept = [test for test in tests if test not in left_out]
            if tests and not kept and model not in (plan.get("skipped") or {}):
                safe_xcom_push(task_instance=ti, key=get_tests_status_xcom_key(model), value="skipped")
            self.tests_per_model[model] = kept


def make_build_task(task: Any, freshness_task_id: str | None = None) -> None:
    """Turn Cosmos' watcher producer into a :class:`DbtBuildOperator` (reading the plan of
    ``freshness_task_id``, if given)."""
    from cosmos.operators._watcher.xcom import _backup_xcom_to_variable

    task.retries = 0
    task.__class__ = DbtBuildOperator
    task.freshness_task_id = freshness_task_id
    for name in ("on_failure_callback", "on_retry_callback"):
        callbacks = getattr(task, name) or []
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        # the Variable backup's writer: nothing here reads it back
        setattr(task, name, [c for c in callbacks if c is not _backup_xcom_to_variable])


class ModelReport:
    """For a model's (or its tests') task placed right after the build: report its outcome.

    Every model task hangs on the build alone, so all of them report at once instead of
    one scheduler hop per layer. The order dbt followed is kept in ``dbt_upstream_task_ids``
    (the tasks Cosmos placed before this one) and matters only when this node did not
    succeed: dbt records "failed" (or nothing) for a node it never ran because something
    upstream failed. Then this task waits for those upstream tasks: if one of them did not succeed
    in the end (its retries spent), this node was not built and the task is skipped, naming
    it; if all of them succeeded (a retry healed them), this node's own failure or retry
    stands, as Cosmos handles it.

    On a later attempt Cosmos runs the model again, taking it for a retry of a failed
    model. A cleared run (see :class:`DbtBuildOperator`) is also a later attempt, but its
    build just ran: where that build succeeded for the node, report it.
    """

    dbt_upstream_task_ids: frozenset[str] = frozenset()

    def poke(self, context: Any) -> bool:
        if self.dbt_upstream_task_ids and not self._built(context):
            from airflow.utils.state import State

            states = self._upstream_states(context)
            if any(state not in State.finished for state in states.values()):
                self.log.info("Not built by dbt; waiting for the upstream tasks: %s", states)
                return False
            not_built = sorted(task for task, state in states.items() if state != "success")
            if not_built:
                from airflow.exceptions import AirflowSkipException

                raise AirflowSkipException(f"Not built: upstream {', '.join(not_built)} did not succeed")
        return super().poke(context)

    def _built(self, context: Any) -> bool:
        from cosmos.operators._watcher.state import is_dbt_node_status_skipped, is_dbt_node_status_success

        status = self._get_node_status(context["ti"], context)
        return is_dbt_node_status_success(status) or is_dbt_node_status_skipped(status)

    def _upstream_states(self, context: Any) -> dict[str, str | None]:
        from cosmos.constants import AIRFLOW_VERSION
        from cosmos.operators._watcher.state import build_producer_state_fetcher

        states = {}
        for task_id in sorted(self.dbt_upstream_task_ids):
            fetch = build_producer_state_fetcher(
                airflow_version=AIRFLOW_VERSION,
                dag_id=self.dag_id,
                run_id=context["run_id"],
                producer_task_id=task_id,
                logger=self.log,
            )
            states[task_id] = fetch() if fetch else None
        return states

    def report_on_worker(self, context: Any, event: Any = None) -> Any:
        """Where :class:`ReportTrigger` hands over a node that did not plainly build: the
        sensor's own pokes decide (an upstream's retries, a stale input, a retry)."""
        return self.execute(context)

    def _handle_retry(self, try_number: int, producer_task_state: str | None, context: Any) -> bool | None:
        from cosmos.operators._watcher.state import is_dbt_node_status_success

        if is_dbt_node_status_success(self._get_node_status(context["ti"], context)):
            return None  # read as on a first attempt
        return super()._handle_retry(try_number, producer_task_state, context)


class ReportTrigger(WatcherTrigger):
    """Cosmos' watcher trigger, ending a model task in the triggerer when dbt built its node
    (or skipped it): such a task never takes a worker slot nor starts a task process, which
    on a small machine costs more than everything the report does. Any other outcome (a
    failed node, one not run) resumes the task on a worker, in
    :meth:`ModelReport.report_on_worker`. Its run id is the task instance's."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{__name__}.{type(self).__name__}", super().serialize()[1]

    async def _log_startup_events(self) -> None:
        """Cosmos logs dbt's version here, waiting for the build to start; these triggers
        start once it is done, and the build's own log has the version."""

    async def run(self) -> Any:
        from airflow.triggers.base import TaskSkippedEvent, TaskSuccessEvent
        from cosmos.listeners.dag_run_listener import EventStatus

        if not self.run_id and self.task_instance is not None:
            self.run_id = self.task_instance.run_id
        async for event in super().run():
            status, reason = event.payload.get("status"), event.payload.get("reason")
            if status == EventStatus.SUCCESS and reason is None:
                self.log.info("dbt built %s", self.model_unique_id)
                yield TaskSuccessEvent()
            elif status == EventStatus.SKIPPED:
                self.log.info("dbt skipped %s", self.model_unique_id)
                yield TaskSkippedEvent()
            else:
                yield event
            return


def report_from_the_triggerer(task: Any) -> None:
    """Start ``task`` (a :class:`ModelReport`) in the triggerer, with :class:`ReportTrigger`.

    Where tasks may wait in the triggerer (:data:`~sluice.core.compat.WAITS_IN_THE_TRIGGERER`);
    ``dag.test`` (``make run``) ignores it and runs the task in-process.
    """
    from airflow.triggers.base import StartTriggerArgs

    task.start_from_trigger = True
    task.start_trigger_args = StartTriggerArgs(
        trigger_cls=f"{__name__}.{ReportTrigger.__name__}",
        trigger_kwargs={
            "model_unique_id": task.model_unique_id,
            "producer_task_id": task.producer_task_id,
            "dag_id": task.dag_id,
            "run_id": "",
            "map_index": None,
            "poke_interval": task.poke_interval,
            "is_test_sensor": task.is_test_sensor,
        },
        next_method=ModelReport.report_on_worker.__name__,
        next_kwargs=None,
        timeout=None,
    )


_REPORTING_CLASSES: dict[type, type] = {}


def report_after_the_build(task: Any, build: Any) -> None:
    """Give a Cosmos watcher model task the :class:`ModelReport` behaviour and place it
    right after ``build``: its Cosmos upstream tasks are remembered as
    ``dbt_upstream_task_ids``, and no longer upstream."""
    cls = type(task)
    if cls not in _REPORTING_CLASSES:
        _REPORTING_CLASSES[cls] = type(cls.__name__, (ModelReport, cls), {"__module__": __name__})
    task.__class__ = _REPORTING_CLASSES[cls]
    task.dbt_upstream_task_ids = frozenset(task.upstream_task_ids - {build.task_id})
    for upstream in list(task.upstream_list):
        upstream.downstream_task_ids.discard(task.task_id)
        task.upstream_task_ids.discard(upstream.task_id)
    task.trigger_rule = "one_done"
    build >> task
    if WAITS_IN_THE_TRIGGERER:
        report_from_the_triggerer(task)
