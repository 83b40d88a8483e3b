"""make connector-lock: a connector whose metadata pins what does not exist resolves
through its overrides file (airbyte-source-s3 4.16.1 pins smart-open[s3]==4.16.1)."""

from __future__ import annotations

import re
import shutil
import subprocess

from environment import ROOT


def connector_lock(folder, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-s", "connector-lock", f"NAME={name}", f"CONNECTOR_LOCKS={folder}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_source_s3_resolves_only_with_its_overrides(tmp_path):
    shutil.copy(ROOT / "include" / "connectors" / "source-s3.in", tmp_path)
    failed = connector_lock(tmp_path, "source-s3")
    assert failed.returncode != 0
    assert "there is no version of smart-open[s3]==4.16.1" in failed.stderr

    shutil.copy(ROOT / "include" / "connectors" / "source-s3.overrides", tmp_path)
    done = connector_lock(tmp_path, "source-s3")
    assert done.returncode == 0, done.stderr
    lock = (tmp_path / "source-s3.txt").read_text()
    assert "\nairbyte-source-s3==4.16.1 \\\n" in lock and "--hash=sha256:" in lock
    smart_open = re.search(r"^smart-open==(\d+)\.", lock, re.MULTILINE)
    assert smart_open and smart_open.group(1) == "7"
