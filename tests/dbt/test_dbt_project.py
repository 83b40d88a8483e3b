"""End-to-end checks of the dbt project against a throwaway DuckDB warehouse.

Two bronze batches are loaded, then `dbt build` runs for batch 1's window,
batch 2's window and batch 1's window again (a backfill). The assertions read
the resulting tables, so they check outcomes rather than dbt's log output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_DIR = REPO_ROOT / "dbt_project"
DBT = Path(sys.executable).with_name("dbt")

BATCH_1 = "20261120T000000Z"
BATCH_2 = "20261120T060000Z"
BATCH_3 = "20261120T120000Z"
EXTRACTED_AT = {BATCH_1: "2026-11-20 00:05:00+00", BATCH_2: "2026-11-20 06:05:00+00"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---------------------------------------------------------------------------
# Bronze fixture data
# ---------------------------------------------------------------------------

AIRBYTE_COLUMNS = """
    _airbyte_raw_id varchar,
    _airbyte_extracted_at timestamptz,
    _airbyte_generation_id bigint,
    _airbyte_meta struct(
        sync_id bigint,
        changes struct(field varchar, change varchar, reason varchar)[]
    ),
    _sluice_batch varchar
"""

BRONZE_DDL = [
    "create schema bronze",
    f"""
    create table bronze.faker__users ({AIRBYTE_COLUMNS},
        id bigint, created_at timestamptz, updated_at timestamptz,
        name varchar, title varchar, age bigint, email varchar, telephone varchar,
        gender varchar, language varchar, academic_degree varchar, nationality varchar,
        occupation varchar, height varchar, blood_type varchar, weight bigint,
        address struct(
            street_number varchar, street_name varchar, city varchar, state varchar,
            province varchar, postal_code varchar, country_code varchar
        )
    )
    """,
    f"""
    create table bronze.faker__products ({AIRBYTE_COLUMNS},
        id bigint, make varchar, model varchar, year bigint, price double,
        created_at timestamptz, updated_at timestamptz
    )
    """,
    f"""
    create table bronze.faker__purchases ({AIRBYTE_COLUMNS},
        id bigint, user_id bigint, product_id bigint,
        created_at timestamptz, updated_at timestamptz,
        added_to_cart_at timestamptz, purchased_at timestamptz, returned_at timestamptz
    )
    """,
]

# Batch 2 renames user 1 and checks out purchase 3, which was an abandoned cart in batch 1.
USER_NAMES = {
    BATCH_1: {1: "Ada", 2: "Bob Stone", 3: "Cy Young"},
    BATCH_2: {1: "Ada Lovelace", 2: "Bob Stone", 3: "Cy Young"},
}
PRODUCTS = [(1, "Mazda", "MX-5", 2023, 100.0), (2, "Honda", "Civic", 2022, 50.5)]
# id -> (user_id, product_id, purchased_at, returned_at) per batch
PURCHASES = {
    BATCH_1: {
        1: (1, 1, "2026-11-01 10:00:00+00", None),
        2: (1, 2, "2026-11-05 10:00:00+00", "2026-11-08 10:00:00+00"),
        3: (2, 2, None, None),
        4: (2, 1, "2026-11-02 10:00:00+00", None),
    },
    BATCH_2: {
        1: (1, 1, "2026-11-01 10:00:00+00", None),
        2: (1, 2, "2026-11-05 10:00:00+00", "2026-11-08 10:00:00+00"),
        3: (2, 2, "2026-11-20 01:00:00+00", None),
        4: (2, 1, "2026-11-02 10:00:00+00", None),
    },
}

ADDRESS = {
    "street_number": "1",
    "street_name": "Main St",
    "city": "London",
    "state": "Greater London",
    "province": "",
    "postal_code": "N1",
    "country_code": "gb",
}
USER_COLUMNS = (
    "?, '2026-01-01 00:00:00+00', ?, ?, 'Dr.', 40, ?, '555-0100', 'female',"
    " 'English', 'PhD', 'British', 'Engineer', '1.70', 'A+', 60, ?"
)
PRODUCT_COLUMNS = "?, ?, ?, ?, ?, '2026-01-01 00:00:00+00', ?"
PURCHASE_COLUMNS = "?, ?, ?, '2026-10-30 00:00:00+00', ?, '2026-10-31 00:00:00+00', ?, ?"


def insert(con, table: str, batch: str, columns_sql: str, params: list) -> None:
    """One bronze row: Airbyte metadata and batch id, then the record's columns."""
    con.execute(
        f"insert into bronze.{table} values (uuid(), ?, 1, {{'sync_id': 1, 'changes': []}}, ?, {columns_sql})",
        [EXTRACTED_AT[batch], batch, *params],
    )


def create_bronze(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        for ddl in BRONZE_DDL:
            con.execute(ddl)
        for batch, updated_at in EXTRACTED_AT.items():
            for user_id, name in USER_NAMES[batch].items():
                # Mixed case and padding: silver must normalise the email.
                email = f"  User{user_id}@Example.COM "
                params = [user_id, updated_at, name, email, ADDRESS]
                insert(con, "faker__users", batch, USER_COLUMNS, params)
            for product in PRODUCTS:
                params = [*product, updated_at]
                insert(con, "faker__products", batch, PRODUCT_COLUMNS, params)
            for purchase_id, purchase in PURCHASES[batch].items():
                user_id, product_id, purchased_at, returned_at = purchase
                params = [purchase_id, user_id, product_id, updated_at]
                params += [purchased_at, returned_at]
                insert(con, "faker__purchases", batch, PURCHASE_COLUMNS, params)


# Hand-computed from PRODUCTS and PURCHASES: purchase 2 (50.50) is returned;
# purchase 3 counts only once batch 2 has checked it out.
REVENUE_AFTER_BATCH_1 = {
    1: (
        "Ada",
        "user1@example.com",
        2,
        1,
        Decimal("150.50"),
        Decimal("100.00"),
        utc("2026-11-01 10:00:00"),
        utc("2026-11-05 10:00:00"),
    ),
    2: (
        "Bob Stone",
        "user2@example.com",
        1,
        0,
        Decimal("100.00"),
        Decimal("100.00"),
        utc("2026-11-02 10:00:00"),
        utc("2026-11-02 10:00:00"),
    ),
    3: ("Cy Young", "user3@example.com", 0, 0, Decimal(0), Decimal(0), None, None),
}
REVENUE_AFTER_BATCH_2 = {
    1: ("Ada Lovelace",) + REVENUE_AFTER_BATCH_1[1][1:],
    2: (
        "Bob Stone",
        "user2@example.com",
        2,
        0,
        Decimal("150.50"),
        Decimal("150.50"),
        utc("2026-11-02 10:00:00"),
        utc("2026-11-20 01:00:00"),
    ),
    3: REVENUE_AFTER_BATCH_1[3],
}


# ---------------------------------------------------------------------------
# Running dbt
# ---------------------------------------------------------------------------


def dbt_env(warehouse: Path, target_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SLUICE_WAREHOUSE_PATH=str(warehouse),
        SLUICE_WAREHOUSE="duckdb",
        DBT_TARGET_PATH=str(target_dir / "target"),
        DBT_LOG_PATH=str(target_dir / "logs"),
    )
    return env


def run_dbt(*args: str, env: dict[str, str], project: Path = PROJECT_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(DBT),
            *args,
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@dataclass
class BuildOutcome:
    results: list[dict]
    customers: dict[int, tuple]
    revenue: dict[int, tuple]


def read_outcome(warehouse: Path, target_dir: Path) -> BuildOutcome:
    run_results = json.loads((target_dir / "target" / "run_results.json").read_text())
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        customers = {
            row[0]: row[1:]
            for row in con.execute(
                "select customer_id, customer_name, email, _sluice_batch from silver.customers"
            ).fetchall()
        }
        revenue = {
            row[0]: row[1:]
            for row in con.execute(
                "select customer_id, customer_name, email, purchases, returned, gross_revenue,"
                " net_revenue, first_purchase_at, last_purchase_at from marts.revenue_per_customer"
            ).fetchall()
        }
    return BuildOutcome(run_results["results"], customers, revenue)


RUNS = [
    ("batch_1", BATCH_1, BATCH_2),
    ("batch_2", BATCH_2, BATCH_3),
    ("backfill_batch_1", BATCH_1, BATCH_2),
]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuildOutcome]:
    workdir = tmp_path_factory.mktemp("dbt_build")
    warehouse = workdir / "sluice.duckdb"
    create_bronze(warehouse)
    env = dbt_env(warehouse, workdir)

    outcomes = {}
    for label, batch_start, batch_end in RUNS:
        window = json.dumps({"batch_start": batch_start, "batch_end": batch_end})
        proc = run_dbt("build", "--vars", window, env=env)
        # Exit code 0 means every model, data test and unit test passed.
        if proc.returncode != 0:
            pytest.fail(
                f"dbt build for {label} exited {proc.returncode}:\n" + proc.stdout[-6000:] + proc.stderr[-3000:]
            )
        outcomes[label] = read_outcome(warehouse, workdir)
    return outcomes


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("label", [label for label, _, _ in RUNS])
def test_build_covers_every_model_and_test(builds: dict[str, BuildOutcome], label: str) -> None:
    # The fixture already requires exit code 0; this checks the build did the work.
    statuses: dict[str, list[str]] = {}
    for result in builds[label].results:
        resource_type = result["unique_id"].split(".")[0]
        statuses.setdefault(resource_type, []).append(result["status"])
    assert statuses["model"] == ["success"] * 10
    assert len(statuses["unit_test"]) >= 4
    assert set(statuses["unit_test"]) == {"pass"}
    assert len(statuses["test"]) >= 30
    assert set(statuses["test"]) == {"pass"}


def test_silver_customers_after_batch_1(builds: dict[str, BuildOutcome]) -> None:
    assert builds["batch_1"].customers == {
        1: ("Ada", "user1@example.com", BATCH_1),
        2: ("Bob Stone", "user2@example.com", BATCH_1),
        3: ("Cy Young", "user3@example.com", BATCH_1),
    }


@pytest.mark.parametrize("label", ["batch_2", "backfill_batch_1"])
def test_silver_customers_keep_latest_batch(builds: dict[str, BuildOutcome], label: str) -> None:
    # One row per user with batch 2's version, also after batch 1 is re-run.
    assert builds[label].customers == {
        1: ("Ada Lovelace", "user1@example.com", BATCH_2),
        2: ("Bob Stone", "user2@example.com", BATCH_2),
        3: ("Cy Young", "user3@example.com", BATCH_2),
    }


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("batch_1", REVENUE_AFTER_BATCH_1),
        ("batch_2", REVENUE_AFTER_BATCH_2),
        ("backfill_batch_1", REVENUE_AFTER_BATCH_2),
    ],
)
def test_revenue_per_customer_matches_hand_computed(
    builds: dict[str, BuildOutcome], label: str, expected: dict[int, tuple]
) -> None:
    assert builds[label].revenue == expected


def test_parse_writes_manifest_with_all_layers(tmp_path: Path) -> None:
    env = dbt_env(tmp_path / "unused.duckdb", tmp_path)
    proc = run_dbt("parse", env=env)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    models = {node["name"]: node["schema"] for node in manifest["nodes"].values() if node["resource_type"] == "model"}
    assert models == {
        "stg_faker__users": "bronze",
        "stg_faker__products": "bronze",
        "stg_faker__purchases": "bronze",
        "customers": "silver",
        "products": "silver",
        "purchases": "silver",
        "dim_customers": "gold",
        "dim_products": "gold",
        "fct_purchases": "gold",
        "revenue_per_customer": "marts",
    }

    sources = {source["name"]: source for source in manifest["sources"].values()}
    assert set(sources) == {"faker__users", "faker__products", "faker__purchases"}
    for source in sources.values():
        assert source["schema"] == "bronze"
        assert source["loaded_at_field"] == "_airbyte_extracted_at"
        assert source["freshness"]["warn_after"] == {"count": 6, "period": "hour"}
        assert source["freshness"]["error_after"] == {"count": 12, "period": "hour"}

    unit_tests = {test["name"] for test in manifest["unit_tests"].values()}
    assert {
        "test_customers_keeps_latest_version_inside_window",
        "test_customers_backfill_does_not_overwrite_newer_version",
        "test_revenue_per_customer_arithmetic",
    } <= unit_tests


def test_a_totals_test_missing_an_argument_fails_naming_it(tmp_path: Path) -> None:
    import shutil

    project = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    declaration = project / "models" / "marts" / "revenue_per_customer.yml"
    text = declaration.read_text()
    line = next(line for line in text.splitlines() if "compare_total: sum(case" in line)
    declaration.write_text(text.replace(line + "\n", "", 1))
    proc = run_dbt(
        "compile", "--select", "test_name:totals_agree", env=dbt_env(tmp_path / "wh.duckdb", tmp_path), project=project
    )
    assert proc.returncode != 0
    assert "totals_agree needs the argument compare_total" in proc.stdout
    assert "models/marts/revenue_per_customer.yml" in proc.stdout
