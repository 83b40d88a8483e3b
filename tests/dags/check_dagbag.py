"""Fill a DagBag from the DAG folder and print what a test needs to judge it, as JSON.

Run by the tests under each Airflow version's own interpreter. While the DagBag fills,
internet sockets are blocked and every started process is recorded: parsing must never
start dbt or reach the network.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import airflow
from airflow.models.dagbag import DagBag

from sluice.policy import dag_violations

spawned: list[str] = []
network: list[str] = []
_popen_init = subprocess.Popen.__init__
_connect = socket.socket.connect


def _recording_popen(self, args, *rest, **kwargs):
    spawned.append(args if isinstance(args, str) else " ".join(map(str, args)))
    return _popen_init(self, args, *rest, **kwargs)


def _no_internet(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        network.append(str(address))
        raise OSError(f"network blocked during DAG parsing: {address}")
    return _connect(self, address)


subprocess.Popen.__init__ = _recording_popen
socket.socket.connect = _no_internet


def _start_trigger(task) -> dict | None:
    """The trigger a task starts in (no worker), as the triggerer will build it; None if it starts on a worker."""
    if not getattr(task, "start_from_trigger", False):
        return None
    import importlib

    args = task.start_trigger_args
    module, _, name = args.trigger_cls.rpartition(".")
    trigger = getattr(importlib.import_module(module), name)(**args.trigger_kwargs)
    return {
        "trigger": type(trigger).__name__,
        "kwargs": trigger.serialize()[1],
        "resumes_in": args.next_method if callable(getattr(task, args.next_method, None)) else None,
    }


started = time.perf_counter()
kwargs = {} if airflow.__version__.startswith("3") else {"include_examples": False}
dagbag = DagBag(dag_folder=sys.argv[1], **kwargs)
seconds = time.perf_counter() - started
dags = {}
for dag_id, dag in dagbag.dags.items():
    timetable = dag.timetable
    dags[dag_id] = {
        "tags": sorted(dag.tags),
        "owners": sorted({task.owner for task in dag.tasks}),
        "doc_md": bool(dag.doc_md),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "timetable": type(timetable).__name__,
        "cron": getattr(timetable, "_expression", None),
        "timezone": str(getattr(timetable, "_timezone", "")),
        "retries": min(task.retries for task in dag.tasks),
        "backoff": all(task.retry_exponential_backoff for task in dag.tasks),
        "violations": dag_violations(dag),
        "tasks": {
            task.task_id: {
                "operator": type(task).__name__,
                "deferrable": getattr(task, "deferrable", None),
                "start_trigger": _start_trigger(task),
                "upstream": sorted(task.upstream_task_ids),
                "dbt_upstream": sorted(getattr(task, "dbt_upstream_task_ids", ())),
                "outlets": [str(getattr(o, "name", None) or getattr(o, "uri", o)) for o in task.outlets],
                "inlets": [str(getattr(i, "name", None) or getattr(i, "uri", i)) for i in task.inlets],
                "pool": task.pool,
                "retries": task.retries,
                "trigger_rule": str(getattr(task.trigger_rule, "value", task.trigger_rule)),
            }
            for task in dag.tasks
        },
    }
print(
    json.dumps(
        {
            "airflow": airflow.__version__,
            "seconds": seconds,
            "import_errors": {k: str(v) for k, v in dagbag.import_errors.items()},
            "dbt_imported": any(name == "dbt" or name.startswith("dbt.") for name in sys.modules),
            "spawned": spawned,
            "network": network,
            "dags": dags,
        }
    )
)
