"""The installable distribution: what the wheel holds, and Airflow finding its plugin once."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from environment import ROOT, VENV_BIN, isolated_environment

UV = ROOT / ".venv-tools" / "bin" / "uv"

LIST_PLUGINS = """
import json
from airflow import plugins_manager
plugins, errors = plugins_manager._get_plugins()
print(json.dumps({"plugins": [[p.name, str(p.source)] for p in plugins], "errors": errors}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, source = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("source")
    # built from a copy: setuptools writes build/ and an egg-info folder beside the sources
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "plugins", source / "plugins", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([UV, "build", "--wheel", "--quiet", "--out-dir", out, source], check=True, timeout=300)
    (built,) = out.glob("sluice-*.whl")
    return built


def test_the_wheel_holds_every_package_template_and_the_entry_point(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {
        path.parent.relative_to(ROOT / "plugins").as_posix() + "/__init__.py"
        for path in (ROOT / "plugins" / "sluice").rglob("__init__.py")
    }
    assert packages <= names
    templates = {path.relative_to(ROOT / "plugins").as_posix() for path in (ROOT / "plugins").rglob("templates/*")}
    assert templates and templates <= names
    assert {"sluice_plugin.py", "airflow_local_settings.py"} <= names
    (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[airflow.plugins]\nsluice = sluice_plugin:entry_point_plugin" in text


def plugins_found(site: Path, plugins_folder: Path, tmp_path: Path) -> dict:
    env = isolated_environment(tmp_path / "airflow", tmp_path / "data")
    env.update(PYTHONPATH=str(site), AIRFLOW__CORE__PLUGINS_FOLDER=str(plugins_folder))
    proc = subprocess.run(
        [VENV_BIN / "python", "-c", LIST_PLUGINS], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_airflow_registers_the_plugin_once_from_the_entry_point_or_the_plugins_folder(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([UV, "pip", "install", "--quiet", "--no-deps", "--target", site, wheel], check=True, timeout=300)
    empty = tmp_path / "plugins"
    empty.mkdir()
    installed = plugins_found(site, empty, tmp_path)
    sluice = [source for name, source in installed["plugins"] if name == "sluice"]
    assert len(sluice) == 1 and "EntryPoint(name='sluice'" in sluice[0]
    assert installed["errors"] == {}
    # Both provide it: the plugins folder's copy is registered, the entry point steps aside
    # (Airflow would skip the second and list it as a plugin import error).
    both = plugins_found(site, ROOT / "plugins", tmp_path)
    assert [source for name, source in both["plugins"] if name == "sluice"] == ["$PLUGINS_FOLDER/sluice_plugin.py"]
    assert both["errors"] == {}
