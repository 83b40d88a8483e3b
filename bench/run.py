"""Sluice benchmarks: the platform's figures against their targets and the bare tools.

Parse time, landing and lake overhead, scaling, the platform's batches and backfills
against the bare work they orchestrate, memory of the idle stack.

Usage: ``make bench`` or, with the make environment,
``.venv/bin/python bench/run.py --output bench/results.json [--only parse ...] [--quick]``.

Writes every figure as JSON and prints the headline figures with their targets. The
targets are reported, never enforced; the exit status is non-zero only when a
benchmark could not measure (its error is printed and kept under ``errors``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from common import cpu_busy_percent, machine_info

BENCHMARKS = (
    "parse",
    "transform_parse",
    "landing",
    "files",
    "files_compare",
    "lake",
    "s3",
    "snowflake",
    "airbyte",
    "erasure",
    "watch",
    "scale",
    "batch",
    "cosmos",
    "backfill",
    "backfill_30d",
    "up",
)
#: left out of a --quick run unless named with --only
SLOW_BENCHMARKS = ("backfill_30d",)
#: headline figure -> (unit, target or None for a figure reported without one, what it is)
TARGETS: dict[str, tuple[str, float | None, str]] = {
    "dag_parse_seconds": ("s", 0.5, "DagBag fill of dags/, cold"),
    "transform_parse_ms_per_node": ("ms", 5, "transform.py cold fill / dbt nodes, real project"),
    "transform_parse_synthetic_ms_per_node": ("ms", 5, "the same, synthetic ~250-model project"),
    "landing_overhead_ratio": ("x", 1.10, "sync_batch / raw connector read"),
    "json_landing_ratio": ("x", 1.3, "files driver batch of a JSON Lines file / pyarrow read_json + Parquet write"),
    "xml_landing_ratio": ("x", 1.5, "files driver batch of an XML file / bare lxml iterparse + Parquet write"),
    "csv_landing_ratio": ("x", 1.3, "files driver batch of a CSV file / pyarrow read_csv (text) + Parquet write"),
    "json_vs_dlt_ratio": ("x", 1.0, "files driver batch of a JSON Lines file / dlt filesystem source to Parquet"),
    "file_driver_vs_airbyte_file_ratio": (
        "x",
        None,
        "files driver batches of a JSON Lines and a CSV file / airbyte-source-s3 through the local driver",
    ),
    "lake_bytes_written_per_landed_byte": ("x", 1.1, "lake bytes new or changed / landed Parquet bytes"),
    "s3_landing_ratio": ("x", 1.3, "landing with the lake on S3 (radosgw) / in a folder"),
    "erasure_10_ratio": ("x", 0.2, "erasing 10 people through the index / a full rewrite of the table"),
    "erasure_1000_ratio": ("x", 1.0, "erasing 1,000 people / a full rewrite of the table"),
    "erasure_index_update_ratio": ("x", 0.1, "index maintenance of a batch / its bronze commit"),
    "watch_overhead_ratio": ("x", 0.1, "freshness + metrics of a batch / its land + commit + load"),
    "airbyte_sync_overhead_ratio": ("x", 1.5, "Airbyte job's success to bronze + warehouse / bare copy of its files"),
    "scale_4x_time_ratio": ("x", 4.4, "land+commit+load time, 4x records / 1x"),
    "scale_4x_peak_memory_ratio": ("x", 1.5, "peak RSS of that process, 4x / 1x"),
    "batch_overhead_ratio": ("x", 1.5, "make run of a batch / its bare work"),
    "cosmos_vs_dbt_build_ratio": ("x", 1.3, "the run's dbt tasks, first start to last end / bare dbt build"),
    "backfill_overhead_ratio": ("x", 2.0, "make backfill of a day / its bare work"),
    "up_idle_rss_mb": ("MB", 2048, "RSS of make up at idle, peak"),
}


def run_parse(args: argparse.Namespace) -> dict[str, Any]:
    from parse_bench import bench_parse

    return bench_parse(repeats=args.repeats)


def run_transform_parse(args: argparse.Namespace) -> dict[str, Any]:
    from transform_parse_bench import bench_transform_parse

    return bench_transform_parse(repeats=args.repeats, models=args.synthetic_models)


def run_landing(args: argparse.Namespace) -> dict[str, Any]:
    from landing_bench import bench_landing

    return bench_landing(count=args.faker_count, repeats=args.repeats)


def run_files(args: argparse.Namespace) -> dict[str, Any]:
    from files_bench import bench_files

    return bench_files(size_mb=args.files_mb, repeats=args.repeats, peak_mb=args.files_peak_mb)


def run_files_compare(args: argparse.Namespace) -> dict[str, Any]:
    from files_compare_bench import bench_files_compare

    return bench_files_compare(size_mb=args.files_mb, repeats=args.repeats)


def run_lake(args: argparse.Namespace) -> dict[str, Any]:
    from lake_bench import bench_lake_bytes

    return bench_lake_bytes(count=args.faker_count)


def run_s3(args: argparse.Namespace) -> dict[str, Any]:
    from s3_bench import bench_s3

    return bench_s3(count=args.faker_count, repeats=args.repeats)


def run_snowflake(args: argparse.Namespace) -> dict[str, Any]:
    from snowflake_bench import bench_snowflake

    return bench_snowflake(count=args.faker_count)


def run_airbyte(args: argparse.Namespace) -> dict[str, Any]:
    from airbyte_bench import bench_airbyte

    return bench_airbyte(count=args.faker_count, repeats=args.repeats)


def run_erasure(args: argparse.Namespace) -> dict[str, Any]:
    from erasure_bench import bench_erasure

    return bench_erasure(rows=args.erasure_rows)


def run_watch(args: argparse.Namespace) -> dict[str, Any]:
    from watch_bench import bench_watch

    return bench_watch(count=args.faker_count)


def run_scale(args: argparse.Namespace) -> dict[str, Any]:
    from scale_bench import bench_scale

    return bench_scale(count=args.faker_count, factor=4)


def run_batch(args: argparse.Namespace) -> dict[str, Any]:
    from platform_bench import bench_batch

    return {key: value for key, value in bench_batch().items() if not key.startswith("cosmos_")}


def run_cosmos(args: argparse.Namespace) -> dict[str, Any]:
    from platform_bench import bench_batch

    return {key: value for key, value in bench_batch().items() if key.startswith(("cosmos_", "bare_batch_dbt"))}


def run_backfill(args: argparse.Namespace) -> dict[str, Any]:
    from platform_bench import bench_backfill

    return bench_backfill(interval_count=args.backfill_intervals)


def run_backfill_30d(args: argparse.Namespace) -> dict[str, Any]:
    from platform_bench import bench_backfill_30d

    return bench_backfill_30d(days=args.backfill_days)


def run_up(args: argparse.Namespace) -> dict[str, Any]:
    from up_bench import bench_up

    return bench_up(idle_seconds=args.idle_seconds, sample_seconds=args.sample_seconds)


RUNNERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "parse": run_parse,
    "transform_parse": run_transform_parse,
    "landing": run_landing,
    "files": run_files,
    "files_compare": run_files_compare,
    "lake": run_lake,
    "s3": run_s3,
    "snowflake": run_snowflake,
    "airbyte": run_airbyte,
    "erasure": run_erasure,
    "watch": run_watch,
    "scale": run_scale,
    "batch": run_batch,
    "cosmos": run_cosmos,
    "backfill": run_backfill,
    "backfill_30d": run_backfill_30d,
    "up": run_up,
}
#: option -> (full run, --quick run), for the options left unset on the command line
DEFAULTS: dict[str, tuple[Any, Any]] = {
    "repeats": (3, 1),
    "faker_count": (100_000, 2_000),
    "files_mb": (float(os.environ.get("SLUICE_BENCH_FILES_MB", 100)), 20),
    "files_peak_mb": (256.0, 10.0),
    "backfill_intervals": (4, 1),
    "backfill_days": (7, 0.25),
    "idle_seconds": (30, 5),
    "sample_seconds": (15, 3),
    "erasure_rows": (10_000_000, 200_000),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("bench/results.json"))
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        help="run only this benchmark (repeatable); default: all",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="for development: small counts, 1 repeat, 1-interval backfill, backfill_30d left out; "
        "explicit options still win",
    )
    parser.add_argument("--repeats", type=int, help="repeats of parse and landing (default 3, quick 1)")
    parser.add_argument(
        "--faker-count",
        type=int,
        help="source-faker users for landing, lake, s3, watch and scale (1x); purchases are about as many, "
        "products 100 (default 100000, quick 2000)",
    )
    parser.add_argument(
        "--files-mb",
        type=float,
        help="MB of each file of the files and files_compare benchmarks' speed figures "
        "(default 100 or SLUICE_BENCH_FILES_MB, quick 20)",
    )
    parser.add_argument(
        "--files-peak-mb",
        type=float,
        help="MB of the JSON Lines and XML files of the files memory figures (1x), 4x of it beside "
        "(default 256: 1 GB at 4x; quick 10)",
    )
    parser.add_argument(
        "--backfill-intervals", type=int, help="6-hour intervals of the backfill benchmark (default 4, quick 1)"
    )
    parser.add_argument(
        "--backfill-days",
        type=float,
        help="days backfilled for backfill_30d_seconds, scaled to 30; 30 measures it directly "
        "(default 7, quick 0.25: one interval)",
    )
    parser.add_argument(
        "--synthetic-models", type=int, default=250, help="models of the synthetic project of transform_parse"
    )
    parser.add_argument(
        "--erasure-rows", type=int, help="rows of the erasure benchmark's table (default 10M, quick 200k)"
    )
    parser.add_argument("--idle-seconds", type=float, help="make up: wait before sampling (default 30, quick 5)")
    parser.add_argument("--sample-seconds", type=int, help="make up: seconds sampled (default 15, quick 3)")
    args = parser.parse_args(argv)
    for name, (full, quick) in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if not args.only:
        args.only = [name for name in BENCHMARKS if not (args.quick and name in SLOW_BENCHMARKS)]
    return args


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen benchmarks; a failing one is recorded and the rest still run."""
    results: dict[str, Any] = machine_info()
    results["errors"] = {}
    results["bench_seconds"] = {}
    results["cpu_busy_percent_before"] = {}
    results["quick"] = args.quick
    for name in args.only:
        print(f"== {name} ...", flush=True)
        busy = results["cpu_busy_percent_before"][name] = cpu_busy_percent()
        if busy > 25:
            print(f"   busy machine ({busy:.0f}% CPU in use): figures may be skewed")
        start = time.monotonic()
        try:
            results.update(RUNNERS[name](args))
        except Exception as exc:
            traceback.print_exc()
            results["errors"][name] = f"{type(exc).__name__}: {exc}"
        results["bench_seconds"][name] = round(time.monotonic() - start, 1)
    results["targets"] = {key: target for key, (_, target, _) in TARGETS.items()}
    return results


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def table(results: dict[str, Any]) -> str:
    """The headline figures against their targets, then the supporting figures."""
    lines = [f"{'figure':<40} {'value':>12}  {'target':>8}  status"]
    for key, (unit, target, what) in TARGETS.items():
        if key not in results:
            continue
        value = results[key]
        if target is None:
            lines.append(f"{key:<40} {_fmt(value):>12}  {'—':>8}  {'':<5} {unit}: {what}")
            continue
        status = "n/a" if value is None else "ok" if value <= target else "OVER"
        lines.append(f"{key:<40} {_fmt(value):>12}  <= {_fmt(target):<5} {status:<5} {unit}: {what}")
    lines.append("")
    skip = set(TARGETS) | {"targets", "errors", "up_idle_processes", "bare_day_per_interval"}
    for key, value in results.items():
        if key in skip:
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(_fmt(v) for v in value)
        lines.append(f"{key:<40} {_fmt(value)}")
    for process in results.get("up_idle_processes", []):
        lines.append(f"  {process['rss_mb']:>8,.1f} MB  {process['process']}")
    for name, error in results["errors"].items():
        lines.append(f"ERROR in {name}: {error}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run_all(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten to {args.output}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
