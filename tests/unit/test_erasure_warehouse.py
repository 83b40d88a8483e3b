"""Erasing people from every declared warehouse table, on DuckDB and on Snowflake (fakesnow)."""

from __future__ import annotations

import pytest

from residue import bytes_holding
from sluice.core.dbt_manifest import load_manifest
from sluice.erasure.registry import personal_tables
from sluice.erasure.warehouse import erase_from_warehouse
from sluice.warehouse.duckdb_load import compact_duckdb

PEOPLE = {"email": {"ada@x.io"}, "user_id": {"1"}}
TABLES = {  # a few of the declared tables, with their identifier columns and a personal one
    "bronze.faker__users": "id int, email varchar, name varchar",
    "bronze.faker__purchases": "id int, user_id int",
    "silver.customers": "customer_id int, email varchar, customer_name varchar",
    "gold.fct_purchases": "purchase_id int, customer_id int",
    "marts.revenue_per_customer": "customer_id int, email varchar, customer_name varchar",
}
ROWS = {
    "bronze.faker__users": ["(1, ' Ada@X.io', 'Ada Lovelace-Byron')", "(2, 'bob@x.io', 'Bob')", "(1, 'ada@x.io', 'A')"],
    "bronze.faker__purchases": ["(10, 1)", "(11, 2)", "(12, 1)"],
    "silver.customers": ["(1, 'ada@x.io', 'Ada Lovelace-Byron')", "(2, 'bob@x.io', 'Bob')"],
    "gold.fct_purchases": ["(10, 1)", "(11, 2)"],
    "marts.revenue_per_customer": ["(1, 'ada@x.io', 'Ada Lovelace-Byron')", "(2, 'bob@x.io', 'Bob')"],
}
EXPECTED = {
    "bronze.faker__users": 2,
    "bronze.faker__purchases": 2,
    "silver.customers": 1,
    "gold.fct_purchases": 1,
    "marts.revenue_per_customer": 1,
}


def fill(cursor):
    for table, columns in TABLES.items():
        cursor.execute(f"create schema if not exists {table.split('.')[0]}")
        cursor.execute(f"create table {table} ({columns})")
        cursor.execute(f"insert into {table} values {', '.join(ROWS[table])}")


def counts(cursor):
    result = {}
    for table in TABLES:
        cursor.execute(f"select count(*) from {table}")
        result[table] = cursor.fetchone()[0]
    return result


def test_erasing_from_duckdb_removes_the_rows_everywhere_and_compaction_removes_their_bytes(tmp_path):
    import duckdb

    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("pragma force_compression='uncompressed'")  # so the file's bytes can be searched
    fill(con.cursor())
    con.execute("checkpoint")
    theirs, others = ["Ada Lovelace-Byron", "ada@x.io"], ["bob@x.io"]
    assert bytes_holding([path], theirs + others) == {*theirs, *others}
    tables = personal_tables(load_manifest())
    assert erase_from_warehouse(con, tables, PEOPLE) == EXPECTED
    assert counts(con.cursor()) == {table: len(rows) - EXPECTED[table] for table, rows in ROWS.items()}
    assert erase_from_warehouse(con, tables, PEOPLE) == dict.fromkeys(EXPECTED, 0), "a rerun changes nothing"
    con.execute("checkpoint")
    con.close()
    assert bytes_holding([path], theirs) == set(theirs), "a DELETE leaves the bytes in free blocks"
    compact_duckdb(path)
    assert bytes_holding([path], theirs + others) == set(others), "nobody else's bytes went"
    con = duckdb.connect(str(path), read_only=True)
    assert counts(con.cursor())["bronze.faker__users"] == 1 and con.sql(
        "select name from bronze.faker__users"
    ).fetchall() == [("Bob",)]


def test_erasing_from_snowflake_deletes_in_every_layer(snowflake):
    cursor = snowflake.cursor()
    fill(cursor)
    assert erase_from_warehouse(snowflake, personal_tables(load_manifest()), PEOPLE) == EXPECTED
    assert counts(cursor) == {table: len(rows) - EXPECTED[table] for table, rows in ROWS.items()}


def test_a_failing_delete_leaves_every_table_as_it_was(tmp_path):
    import duckdb

    from sluice.erasure.registry import PersonalTable

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    fill(con.cursor())
    broken = PersonalTable("warehouse", "silver.customers", "nope", (("nope", "user_id"),))
    with pytest.raises(duckdb.BinderException):
        erase_from_warehouse(con, [*personal_tables(load_manifest()), broken], PEOPLE)
    assert counts(con.cursor()) == {table: len(rows) for table, rows in ROWS.items()}


def test_the_proof_finds_a_personal_value_only_the_person_had(tmp_path):
    import duckdb

    from sluice.erasure.warehouse import residue

    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    fill(con.cursor())
    tables = personal_tables(load_manifest())
    erase_from_warehouse(con, tables, PEOPLE)
    assert residue(con, tables, PEOPLE) == {}
    # a copy of their row that lost its identifiers (a load gone wrong) still names them
    con.execute("insert into bronze.faker__users values (null, null, ' ada lovelace-byron')")
    assert residue(con, tables, PEOPLE) == {}, "their identifiers alone do not find it"
    assert residue(con, tables, PEOPLE, {"pii:name": {"ada lovelace-byron"}}) == {"bronze.faker__users": 1}
