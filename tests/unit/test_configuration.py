"""Every environment variable Sluice reads is read in sluice.core.config and documented in one table."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_only_the_config_module_reads_the_environment():
    readers = sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "plugins").rglob("*.py")
        if re.search(r"os\.environ|os\.getenv", path.read_text())
    )
    assert readers == ["plugins/sluice/core/config.py"]


def test_every_variable_the_config_reads_is_in_the_configuration_table():
    source = (ROOT / "plugins/sluice/core/config.py").read_text()
    read = set(re.findall(r'(?:get|_number|_choice|_path)\(\s*"(SLUICE_[A-Z0-9_]+)"', source))
    rows = [line for line in (ROOT / "docs/configuration.md").read_text().splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`(SLUICE_[A-Z0-9_]+)`", row.split("|")[1])}
    assert read, "no variable found in the config module"
    assert sorted(read - documented) == []
