"""How one batch's time and memory grow with its size: 1x against 4x records."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from common import VENV_PYTHON, checked_run, make_env

CHILD = Path(__file__).with_name("scale_child.py")


def run_child(count: int, folder: Path) -> dict[str, Any]:
    """scale_child.py in a fresh interpreter (not a fork: deltalake panics after one)."""
    output = folder / f"scale-{count}.json"
    log = folder / f"scale-{count}.log"
    checked_run([VENV_PYTHON, CHILD, str(count), folder / f"work-{count}", output], make_env(), log, timeout=3600)
    return json.loads(output.read_text())


def bench_scale(count: int = 100_000, factor: int = 4) -> dict[str, Any]:
    """Landing + bronze commit + warehouse load of one batch at ``count`` and ``factor`` x ``count``.

    Each size runs in its own fresh process, which reports its wall time and peak RSS.
    """
    with tempfile.TemporaryDirectory(prefix="sluice-bench-scale-") as tmp:
        small = run_child(count, Path(tmp))
        large = run_child(count * factor, Path(tmp))
    result = {
        f"scale_{factor}x_time_ratio": large["seconds"] / small["seconds"],
        f"scale_{factor}x_peak_memory_ratio": large["peak_rss_mb"] / small["peak_rss_mb"],
        f"scale_{factor}x_records_ratio": large["records"] / small["records"],
        f"scale_{factor}x_connector_peak_memory_ratio": large["connector_peak_rss_mb"] / small["connector_peak_rss_mb"],
        "scale_faker_counts": [count, count * factor],
    }
    for label, run in (("1x", small), (f"{factor}x", large)):
        for key in (
            "seconds",
            "land_seconds",
            "commit_seconds",
            "load_seconds",
            "peak_rss_mb",
            "baseline_peak_rss_mb",
            "connector_peak_rss_mb",
            "records",
        ):
            result[f"scale_{label}_{key}"] = run[key]
    return result
