"""The Airflow 2.11 backfill of the whole slice, run in the background.

``airflow dags backfill`` on 2.11 with SQLite runs one task at a time, each in a fresh
process: minutes of mostly waiting. The suite starts it as soon as collection shows a
test needs it, and that test collects the result at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from environment import ROOT, VENV2_BIN, isolated_environment

DAY_START, DAY_END = "2026-11-20", "2026-11-21"


@dataclass
class Backfill:
    process: subprocess.Popen
    data_dir: Path
    log_path: Path

    def wait(self, timeout: float) -> tuple[int, str]:
        returncode = self.process.wait(timeout=timeout)
        return returncode, self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


def start(root: Path) -> Backfill:
    """Migrate a 2.11 home under ``root`` and backfill ingestion, then the transform, for one day."""
    root.mkdir(parents=True, exist_ok=True)
    env = isolated_environment(root / "airflow", root / "data")
    airflow, python = VENV2_BIN / "airflow", VENV2_BIN / "python"
    backfill = f"{python} {ROOT / 'include' / 'scripts' / 'backfill.py'}"
    script = f"""set -e
mkdir -p {root / "airflow"}
{airflow} db migrate > /dev/null
{airflow} pools import {ROOT / "include" / "airflow" / "pools.json"} > /dev/null
{backfill} --dag ingest_faker --start {DAY_START} --end {DAY_END}
{backfill} --dag transform --start {DAY_START} --end {DAY_END}
"""
    log_path = root / "backfill.log"
    process = subprocess.Popen(
        ["bash", "-c", script],
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=ROOT,
    )
    return Backfill(process, root / "data", log_path)
