"""Memory of the embedded stack (include/scripts/up.sh) once it is up and idle."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from common import MB, ROOT, VENV_PYTHON, BenchmarkError, isolated_env

UP_SH = ROOT / "include" / "scripts" / "up.sh"
AIRFLOW = VENV_PYTHON.parent / "airflow"


def free_port(preferred: int = 8080) -> int:
    """``preferred`` if nothing listens there, else a port the kernel hands out."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_home(env: dict[str, str], log: Path) -> None:
    """``airflow db migrate`` and the pools, as ``make airflow-home`` does."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    pools = str(ROOT / "include" / "airflow" / "pools.json")
    for args in (["db", "migrate"], ["pools", "import", pools]):
        with log.open("a") as out:
            proc = subprocess.run(
                [str(AIRFLOW), *args],
                check=False,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=out,
            )
        if proc.returncode != 0:
            raise BenchmarkError(f"airflow {' '.join(args)} failed; see {log}")


def wait_healthy(port: int, up: subprocess.Popen, timeout: float) -> float:
    """Seconds until /api/v2/monitor/health answers; raises if up.sh dies first."""
    url = f"http://localhost:{port}/api/v2/monitor/health"
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if up.poll() is not None:
            raise BenchmarkError(f"up.sh exited with {up.returncode} before healthy")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    raise BenchmarkError(f"{url} did not answer within {timeout:.0f} s")


def process_tree(root_pid: int) -> list[psutil.Process]:
    """The live processes under ``root_pid``, the root included."""
    try:
        root = psutil.Process(root_pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    return [p for p in tree if _alive(p)]


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie (a zombie holds no memory, only a pid)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _label(process: psutil.Process) -> str:
    """``airflow scheduler``, ``bash up.sh``, ... : what a process is, in a few words."""
    cmdline = process.cmdline() or [process.name()]
    if len(cmdline) > 1 and cmdline[1] == "-c":  # the group leader's inline script
        return f"{Path(cmdline[0]).name} -c ..."
    words = [Path(w).name if w.startswith("/") else w for w in " ".join(cmdline).split()]
    return " ".join(words)[:60]


def sample(root_pid: int) -> dict[str, Any]:
    """RSS and PSS of the tree right now (bytes), and which process holds what."""
    rss = pss = 0
    processes = []
    for process in process_tree(root_pid):
        try:
            info = process.memory_full_info()
            label = _label(process)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        rss += info.rss
        pss += getattr(info, "pss", 0)
        processes.append({"pid": process.pid, "process": label, "rss_mb": round(info.rss / MB, 1)})
    return {"rss": rss, "pss": pss, "processes": processes}


def stop(up: subprocess.Popen, timeout: float) -> tuple[bool, float, list[int]]:
    """SIGINT to up.sh; (every process gone within ``timeout``, seconds, leftovers)."""
    tree = process_tree(up.pid)
    start = time.monotonic()
    up.send_signal(signal.SIGINT)
    while time.monotonic() - start < timeout:
        up.poll()  # reap up.sh itself
        if not any(_alive(p) for p in tree):
            return True, time.monotonic() - start, []
        time.sleep(0.5)
    leftovers = [p for p in tree if _alive(p)]
    for process in leftovers:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    up.wait(timeout=10)
    return False, time.monotonic() - start, [p.pid for p in leftovers]


def bench_up(idle_seconds: float = 30, sample_seconds: int = 15, stop_timeout: float = 40) -> dict[str, Any]:
    """Peak summed RSS of up.sh's process tree over ``sample_seconds`` at idle.

    The stack runs on a fresh, migrated Airflow home. Sampling starts
    ``idle_seconds`` after the health endpoint first answers, once a second. Then
    up.sh gets SIGINT and must leave no process behind within ``stop_timeout``.
    """
    home = Path(tempfile.mkdtemp(prefix="sluice-bench-up-"))
    env = isolated_env(home / "airflow", home / "data")
    port = free_port()
    env["AIRFLOW__API__PORT"] = str(port)
    log = home / "up.log"
    prepare_home(env, log)
    with log.open("a") as out:
        up = subprocess.Popen(
            [str(UP_SH)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stopped = None
    try:
        try:
            ready = wait_healthy(port, up, timeout=180)
        except BenchmarkError as exc:
            raise BenchmarkError(f"{exc}; logs: {log}, {home}/airflow/up-logs") from None
        time.sleep(idle_seconds)
        samples = []
        for _ in range(sample_seconds):
            samples.append(sample(up.pid))
            time.sleep(1)
        stopped = stop(up, stop_timeout)
    finally:
        if stopped is None and up.poll() is None:
            stop(up, stop_timeout)
    peak = max(samples, key=lambda s: s["rss"])
    clean, stop_seconds, leftovers = stopped
    shutil.rmtree(home, ignore_errors=True)
    return {
        "up_idle_rss_mb": peak["rss"] / MB,
        "up_idle_pss_mb": max(s["pss"] for s in samples) / MB or None,
        "up_idle_rss_min_mb": min(s["rss"] for s in samples) / MB,
        "up_idle_process_count": len(peak["processes"]),
        "up_idle_process_count_max": max(len(s["processes"]) for s in samples),
        "up_idle_processes": sorted(peak["processes"], key=lambda p: -p["rss_mb"]),
        "up_healthy_after_seconds": ready,
        "up_port": port,
        "up_stopped_cleanly": clean,
        "up_stop_seconds": stop_seconds,
        "up_leftover_pids": leftovers,
    }
