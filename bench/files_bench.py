"""The files driver against the bare tools: one JSON Lines, CSV and XML file landed by a
batch of the driver, and read + written as Parquet by pyarrow (JSON, CSV) and lxml (XML)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from common import MB, VENV_PYTHON, BenchmarkError, checked_run, make_env, median
from files_data import SOURCE, SUFFIX, declare, write_file

CHILD = Path(__file__).with_name("files_child.py")
#: figure prefix of each format
LABEL = {"jsonl": "json", "csv": "csv", "xml": "xml"}


def run_child(
    mode: str, fmt: str, data: Path, work: Path, tag: str, extra_env: dict[str, str] | None = None
) -> dict[str, Any]:
    """One landing in a fresh interpreter, into a fresh lake whose inbox holds ``data`` (hard-linked)."""
    run = work / f"{mode}-{fmt}-{tag}"
    lake = run / "lake"
    inbox = lake / "inbox" / SOURCE / fmt
    inbox.mkdir(parents=True)
    os.link(data, inbox / data.name)
    env = {
        **make_env(),
        "SLUICE_INCLUDE_DIR": str(work / "include"),
        "SLUICE_DATA_DIR": str(run / "data"),
        "SLUICE_LAKE_ROOT": str(lake),
        **(extra_env or {}),
    }
    output = run / "result.json"
    checked_run([VENV_PYTHON, CHILD, mode, fmt, lake, data, output], env, run / "log", timeout=3600)
    return json.loads(output.read_text())


def bench_files(size_mb: float = 100, repeats: int = 3, factor: int = 4, peak_mb: float = 256) -> dict[str, Any]:
    """Per format, the bare read + Parquet write (a) and the driver's batch (b) of a file of
    ``size_mb``, each in its own fresh process, alternated ``repeats`` times;
    ``<fmt>_landing_ratio`` is median(b) / median(a). The driver's batch of a JSON Lines and
    an XML file of ``peak_mb`` and of ``factor`` x that (1 GB by default) then gives its peak
    RSS at both sizes."""
    result: dict[str, Any] = {"files_size_mb": size_mb, "files_repeats": repeats, "files_peak_size_mb": peak_mb}
    with tempfile.TemporaryDirectory(prefix="sluice-bench-files-") as tmp:
        work = Path(tmp)
        declare(work / "include")
        for fmt, label in LABEL.items():
            data = work / "data" / f"part.{SUFFIX[fmt]}"
            records = write_file(fmt, data, size_mb)
            bare, driver = [], []
            for i in range(repeats):
                bare.append(run_child("bare", fmt, data, work, str(i)))
                driver.append(run_child("driver", fmt, data, work, str(i)))
            if any(run["rows"] != records for run in bare + driver):
                raise BenchmarkError(f"{fmt}: rows differ from the {records} written: {bare + driver}")
            megabytes = data.stat().st_size / MB
            data.unlink()
            bare_s, driver_s = median([r["seconds"] for r in bare]), median([r["seconds"] for r in driver])
            result |= {
                f"{label}_landing_ratio": driver_s / bare_s,
                f"{label}_landing_seconds": driver_s,
                f"{label}_bare_seconds": bare_s,
                f"{label}_landing_mb_per_s": megabytes / driver_s,
                f"{label}_bare_mb_per_s": megabytes / bare_s,
                f"{label}_records_per_s": records / driver_s,
                f"{label}_bare_records_per_s": records / bare_s,
                f"{label}_records": records,
                f"{label}_bare_peak_mb": max(r["peak_rss_mb"] for r in bare),
                f"{label}_landing_baseline_mb": max(r["baseline_rss_mb"] for r in driver),
            }
            clear_runs(work, fmt)
            if fmt == "csv":
                continue
            peaks = {}
            for scale in (1, factor):
                large = work / "data" / f"large.{SUFFIX[fmt]}"
                written = write_file(fmt, large, peak_mb * scale)
                run = run_child("driver", fmt, large, work, f"{scale}x")
                if run["rows"] != written:
                    raise BenchmarkError(f"{fmt} at {scale}x: {run['rows']} rows landed of {written} written")
                peaks[scale] = (large.stat().st_size / MB, run)
                large.unlink()
                clear_runs(work, fmt)
            (small_mb, small), (big_mb, big) = peaks[1], peaks[factor]
            result |= {
                f"{label}_landing_peak_mb": {"1x": small["peak_rss_mb"], f"{factor}x": big["peak_rss_mb"]},
                f"{label}_landing_peak_file_mb": {"1x": round(small_mb), f"{factor}x": round(big_mb)},
                f"{label}_landing_{factor}x_peak_ratio": big["peak_rss_mb"] / small["peak_rss_mb"],
                f"{label}_landing_{factor}x_seconds": big["seconds"],
            }
    return result


def clear_runs(work: Path, fmt: str) -> None:
    """The landed Parquet of this format's runs (a 1 GB file's would fill the disk)."""
    for path in work.glob(f"*-{fmt}-*"):
        shutil.rmtree(path, ignore_errors=True)
