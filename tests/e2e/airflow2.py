"""The Airflow 2.11 backfill of the whole slice, run in the background.

``airflow dags backfill`` on 2.11 runs its tasks through the configured executor. With
SQLite that can only be the SequentialExecutor: one task at a time, each paying seconds
of start-up. The backfill here runs on a throwaway PostgreSQL cluster
(include/scripts/postgres.sh) with the LocalExecutor at the parallelism make gives; the
warehouse writers still take turns through the ``sluice_warehouse`` pool, which the script
checks at the end. The suite starts it as soon as collection shows a test needs it, and
that test collects the result.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from company_exports import drop_exports
from e2e.snapshot import pinned_environment
from environment import ROOT, VENV2_BIN, isolated_environment

DAY_START, DAY_END = "2026-11-20", "2026-11-21"
POSTGRES = ROOT / "include" / "scripts" / "postgres.sh"
WAREHOUSE_POOL = "sluice_warehouse"
# Warehouse-pool task tries (this one and earlier ones) whose run times overlap.
OVERLAPS = f"""
WITH tries AS (
    SELECT dag_id, task_id, run_id, map_index, try_number, start_date, end_date FROM task_instance
    WHERE pool = '{WAREHOUSE_POOL}' AND start_date IS NOT NULL
    UNION
    SELECT dag_id, task_id, run_id, map_index, try_number, start_date, end_date FROM task_instance_history
    WHERE pool = '{WAREHOUSE_POOL}' AND start_date IS NOT NULL
)
SELECT a.dag_id || '.' || a.task_id || ' ' || a.run_id || ' with ' || b.dag_id || '.' || b.task_id || ' ' || b.run_id
FROM tries a JOIN tries b
  ON (a.dag_id, a.task_id, a.run_id, a.map_index, a.try_number)
   < (b.dag_id, b.task_id, b.run_id, b.map_index, b.try_number)
 AND a.start_date < coalesce(b.end_date, now()) AND b.start_date < coalesce(a.end_date, now())
"""


@dataclass
class Backfill:
    """A backfill running in the background, known by its folder: any process of the test
    run (each pytest-xdist worker) can wait for it; the process that started it stops it."""

    root: Path
    pid: int
    postgres_dir: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "backfill.log"

    def wait(self, timeout: float) -> tuple[int, str]:
        """The backfill's exit status and log, once it has ended (its script writes the status last)."""
        status = self.root / "returncode"
        deadline = time.monotonic() + timeout
        while not status.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Airflow 2.11 backfill did not end within {timeout:.0f} s")
            time.sleep(1)
        return int(status.read_text()), self.log_path.read_text()

    def save(self) -> None:
        (self.root / "backfill.json").write_text(json.dumps({"pid": self.pid, "postgres_dir": str(self.postgres_dir)}))

    @classmethod
    def load(cls, root: Path) -> Backfill | None:
        """The backfill another process of the run started under ``root``, if any."""
        state = root / "backfill.json"
        if not state.exists():
            return None
        saved = json.loads(state.read_text())
        return cls(root, saved["pid"], Path(saved["postgres_dir"]))

    def stop(self) -> None:
        """Stop the backfill if it still runs, then its PostgreSQL cluster, and remove the cluster."""
        if not (self.root / "returncode").exists():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                self.wait(timeout=30)
        subprocess.run(["bash", POSTGRES, "stop", self.postgres_dir], capture_output=True, timeout=90)
        shutil.rmtree(self.postgres_dir, ignore_errors=True)


def start(root: Path) -> Backfill:
    """Start PostgreSQL, migrate a 2.11 home under ``root`` and backfill ingestion, then the transform, for one day.

    The cluster lives in its own folder under the system temporary directory: run as root,
    the server runs as the ``postgres`` user, which must be able to reach it.
    """
    root.mkdir(parents=True, exist_ok=True)
    postgres_dir = Path(tempfile.mkdtemp(prefix="sluice-pg-"))
    env = pinned_environment(isolated_environment(root / "airflow", root / "data"))  # compared with the one-by-one day
    env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
    # the backfill job schedules its runs itself; a task's own "mini scheduling" of its
    # downstream tasks only contends with it for the same rows (deadlocks that both retry)
    env["AIRFLOW__SCHEDULER__SCHEDULE_AFTER_TASK_EXECUTION"] = "False"
    airflow, python = VENV2_BIN / "airflow", VENV2_BIN / "python"
    backfill = f"{python} {ROOT / 'include' / 'scripts' / 'backfill.py'}"
    script = f"""set -euo pipefail
finish() {{
  status=$?
  bash {POSTGRES} stop {postgres_dir} > /dev/null 2>&1
  if [ $status -ne 0 ] && [ -f {postgres_dir}/postgres.log ]; then
    echo "--- the end of the PostgreSQL server's log ({postgres_dir}/postgres.log):"
    tail -n 40 {postgres_dir}/postgres.log
  fi
  echo $status > {root / "returncode.part"} && mv {root / "returncode.part"} {root / "returncode"}
}}
trap finish EXIT
url=$(bash {POSTGRES} start {postgres_dir}) || {{
  echo "The Airflow 2.11 backfill runs on PostgreSQL, which could not be started (see above)."
  exit 3
}}
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=$url
mkdir -p {root / "airflow"}
{airflow} db migrate > /dev/null
{airflow} pools import {ROOT / "include" / "airflow" / "pools.json"} > /dev/null
{backfill} --dag ingest_company --start {DAY_START} --end {DAY_END}
{backfill} --dag ingest_faker --start {DAY_START} --end {DAY_END}
{backfill} --dag transform --start {DAY_START} --end {DAY_END}
overlaps=$(psql -h {postgres_dir} -U airflow -d airflow -X -q -t -A -v ON_ERROR_STOP=1 < {root / "overlaps.sql"})
if [ -n "$overlaps" ]; then
  echo "tasks of the pool {WAREHOUSE_POOL} ran at the same time:"
  echo "$overlaps"
  exit 1
fi
echo "the pool {WAREHOUSE_POOL} held: its tasks ran one at a time"
"""
    (root / "overlaps.sql").write_text(OVERLAPS)
    from sluice.lake.storage import open_lake

    drop_exports(open_lake(str(root / "data" / "lake")), [f"{DAY_START}T{hour:02}:00" for hour in (0, 6, 12, 18)])
    log_path = root / "backfill.log"
    process = subprocess.Popen(
        ["bash", "-c", script],
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=ROOT,
    )
    backfill = Backfill(root, process.pid, postgres_dir)
    backfill.save()
    return backfill
