"""The files driver against dlt and Airbyte's source-s3, side by side on the same files.

One JSON Lines and one CSV file (bench/files_data.py), each landed by the files driver's
batch, loaded by dlt (``filesystem`` source to its ``filesystem`` destination as Parquet)
and landed by Sluice's ``local`` driver running ``airbyte-source-s3``, which reads them
from a bucket on a throwaway radosgw. dlt and the connector run from virtualenvs of their
own, built here from hash-locked files the first time (not by ``make setup``: CI never
pays for them).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import MB, ROOT, BenchmarkError, checked_run, median
from files_bench import run_child
from files_data import SUFFIX, declare, declare_airbyte, write_file

sys.path.insert(0, str(ROOT / "tests"))

HERE = Path(__file__).resolve().parent
UV = ROOT / ".venv-tools" / "bin" / "uv"
#: the benchmark's own virtualenvs (git-ignored, kept between runs like make's)
VENVS = ROOT / ".bench"
DLT_LOCK = HERE / "requirements-dlt.txt"
CONNECTOR_LOCK = HERE / "connectors" / "source-s3.txt"
DLT_CHILD = HERE / "dlt_child.py"
#: dlt's two ways in: its own read_jsonl (dicts) and a transformer yielding Arrow tables
DLT_MODES = ("dicts", "arrow")


def ensure_venv(folder: Path, lock: Path) -> float:
    """Seconds spent making ``folder`` a virtualenv of exactly ``lock`` (0 when it already is)."""
    stamp = folder / ".installed"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == digest:
        return 0.0
    if not UV.is_file():
        raise BenchmarkError(f"{UV} is missing: run `make install` first")
    start = time.perf_counter()
    for command in (
        [UV, "venv", "--quiet", "--allow-existing", "--python", "python3", folder],
        [UV, "pip", "sync", "--quiet", "--compile-bytecode", "--python", folder / "bin" / "python",
         "--require-hashes", lock],
    ):  # fmt: skip
        done = subprocess.run([str(part) for part in command], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BenchmarkError(f"building {folder} from {lock} failed:\n{done.stderr[-2000:]}")
    stamp.write_text(digest)
    return time.perf_counter() - start


def connector_start_seconds() -> float:
    """Wall seconds of ``source-s3 spec``: the connector's start-up, which every batch pays once."""
    start = time.perf_counter()
    executable = VENVS / "connectors" / "source-s3" / "bin" / "source-s3"
    subprocess.run([str(executable), "spec"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def run_dlt(mode: str, data: Path, work: Path, tag: str) -> dict[str, Any]:
    """One dlt load in a fresh interpreter of the dlt venv, into a fresh folder."""
    run = work / f"dlt-{mode}-{tag}"
    run.mkdir(parents=True)
    output = run / "result.json"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(run)}  # nothing of this machine's dlt config
    python = VENVS / "dlt" / "bin" / "python"
    checked_run([python, DLT_CHILD, mode, data, run, output], env, run / "log", cwd=run, timeout=3600)
    return json.loads(output.read_text())


def _upload(server: Any, bucket: str, data: Path, fmt: str) -> None:
    server.client().upload_file(str(data), bucket, f"{fmt}/{data.name}")


def bench_files_compare(size_mb: float = 100, repeats: int = 3) -> dict[str, Any]:
    """Per format, the files driver's batch (a), source-s3 through the local driver (b)
    and, for JSON Lines, dlt (c, both ways), alternated ``repeats`` times, each in a fresh
    process. ``json_vs_dlt_ratio`` = median(a) / median(c, dicts);
    ``file_driver_vs_airbyte_file_ratio`` = the sum of (a) over the two formats / that of (b)."""
    from s3servers import start_radosgw

    setup = {"dlt": ensure_venv(VENVS / "dlt", DLT_LOCK)}
    setup["source-s3"] = ensure_venv(VENVS / "connectors" / "source-s3", CONNECTOR_LOCK)
    result: dict[str, Any] = {"files_compare_size_mb": size_mb, "files_compare_repeats": repeats}
    result["files_compare_venv_setup_seconds"] = setup
    result["files_compare_connector_start_seconds"] = connector_start_seconds()
    connectors = {"SLUICE_CONNECTORS_DIR": str(VENVS / "connectors")}
    medians: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="sluice-bench-files-compare-") as tmp:
        work = Path(tmp)
        declare(work / "include")
        started = time.perf_counter()
        server = start_radosgw(work / "s3")
        result["files_compare_s3_start_seconds"] = time.perf_counter() - started
        try:
            bucket = server.new_bucket()
            declare_airbyte(work / "include", bucket, server.env)
            for fmt, label in (("jsonl", "json"), ("csv", "csv")):
                data = work / "data" / f"part.{SUFFIX[fmt]}"
                records = write_file(fmt, data, size_mb)
                _upload(server, bucket, data, fmt)
                runs: dict[str, list[dict[str, Any]]] = {"driver": [], "airbyte": []}
                runs |= {f"dlt_{mode}": [] for mode in DLT_MODES} if fmt == "jsonl" else {}
                for i in range(repeats):
                    runs["driver"].append(run_child("driver", fmt, data, work, str(i)))
                    runs["airbyte"].append(run_child("airbyte", fmt, data, work, str(i), connectors))
                    for mode in DLT_MODES if fmt == "jsonl" else ():
                        runs[f"dlt_{mode}"].append(run_dlt(mode, data, work, str(i)))
                    for path in work.glob("*-[0-9]*"):  # the landed Parquet of this round
                        shutil.rmtree(path, ignore_errors=True)
                wrong = {
                    side: [r["rows"] for r in rs] for side, rs in runs.items() if any(r["rows"] != records for r in rs)
                }
                if wrong:
                    raise BenchmarkError(f"{fmt}: rows differ from the {records} written: {wrong}")
                medians[fmt] = {side: median([r["seconds"] for r in rs]) for side, rs in runs.items()}
                megabytes = data.stat().st_size / MB
                result[f"{label}_compare_records"] = records
                result[f"{label}_compare_seconds"] = {
                    side: [round(r["seconds"], 2) for r in rs] for side, rs in runs.items()
                }
                result[f"{label}_compare_mb_per_s"] = {side: megabytes / s for side, s in medians[fmt].items()}
                result[f"{label}_compare_peak_mb"] = {
                    side: max(r["peak_rss_mb"] for r in rs) for side, rs in runs.items()
                }
                result[f"{label}_vs_airbyte_s3_ratio"] = medians[fmt]["driver"] / medians[fmt]["airbyte"]
                data.unlink()
        finally:
            server.stop()
    result["json_vs_dlt_ratio"] = medians["jsonl"]["driver"] / medians["jsonl"]["dlt_dicts"]
    result["json_vs_dlt_arrow_ratio"] = medians["jsonl"]["driver"] / medians["jsonl"]["dlt_arrow"]
    driver = sum(m["driver"] for m in medians.values())
    result["file_driver_vs_airbyte_file_ratio"] = driver / sum(m["airbyte"] for m in medians.values())
    return result
