#!/usr/bin/env bash
# Generate the dbt docs the Airflow UI serves (index.html, manifest.json, catalog.json) into
# DIR (default $SLUICE_DBT_DOCS_DIR). Always on the duckdb target: never a remote warehouse.
# The catalog (column types, table sizes) is read from the embedded warehouse file when it
# is built and no other process holds it (DuckDB takes one writer at a time); otherwise the
# docs get an empty catalog (models, documented columns, tests, lineage and SQL).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$(realpath -m "${1:-${SLUICE_DBT_DOCS_DIR:?usage: $0 DIR}}")
DBT="$ROOT/.venv/bin/dbt"
cd "$ROOT/dbt_project"

generate() {
  "$DBT" docs generate --quiet --profiles-dir . --target duckdb --target-path "$DIR" "$@"
}

mkdir -p "$DIR"
warehouse=${SLUICE_WAREHOUSE_PATH:-}
if [ -n "$warehouse" ] && [ -f "$warehouse" ]; then
  if output=$(generate 2>&1); then
    echo "dbt docs in $DIR (catalog from $warehouse)"
    exit 0
  fi
  echo "$output" | tail -n 5 >&2
  echo "could not read the catalog from $warehouse (in use by a batch?): docs with an empty catalog" >&2
fi
SLUICE_WAREHOUSE_PATH=:memory: generate --empty-catalog
echo "dbt docs in $DIR (empty catalog: build the warehouse, then run make dbt-docs again, to fill it)"
