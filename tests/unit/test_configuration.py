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
    read = set(re.findall(r'"(SLUICE_[A-Z0-9_]+)"', (ROOT / "plugins/sluice/core/config.py").read_text()))
    table = (ROOT / "docs/configuration.md").read_text()
    documented = set(re.findall(r"^\| `(SLUICE_[A-Z0-9_]+)`", table, re.M))
    assert read, "no variable found in the config module"
    assert sorted(read - documented) == []
