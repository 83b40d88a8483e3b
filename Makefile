# Sluice: every target sets up what it needs (virtualenvs, connectors, dbt manifest,
# a project-local AIRFLOW_HOME) on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := $(CURDIR)/.venv-tools
UV := $(TOOLS)/bin/uv
VENV := $(CURDIR)/.venv
VENV2 := $(CURDIR)/.venv-airflow2
BIN := $(VENV)/bin
CONNECTORS := $(patsubst include/connectors/%.txt,.connectors/%/.installed,$(wildcard include/connectors/*.txt))
DBT_SOURCES := $(shell find dbt_project \( -name '*.sql' -o -name '*.yml' \) -not -path '*/target/*' 2>/dev/null)

include include/airflow/env.mk

.PHONY: help
help:  ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

# The development virtualenvs: the runtime lock's packages plus test and lint tools. The
# sluice package itself is imported from plugins/ (PYTHONPATH, Airflow's plugins folder).
$(VENV)/.installed: requirements-dev.txt | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python --require-hashes requirements-dev.txt
	touch $@

$(VENV2)/.installed: requirements-airflow2-dev.txt | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV2)
	$(UV) pip sync --quiet --compile-bytecode --python $(VENV2)/bin/python --require-hashes requirements-airflow2-dev.txt
	touch $@

.connectors/%/.installed: include/connectors/%.txt | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) .connectors/$*
	$(UV) pip sync --quiet --compile-bytecode --python .connectors/$*/bin/python --require-hashes $<
	touch $@

.PHONY: install connectors dbt-manifest dbt-docs airflow-home setup
install: $(VENV)/.installed  ## the development virtualenv (the Airflow 3 stack with test and lint tools)
connectors: $(CONNECTORS)  ## one virtualenv per Airbyte connector
dbt-manifest: dbt_project/target/manifest.json  ## parse the dbt project (Cosmos renders from it)

dbt_project/target/manifest.json: $(VENV)/.installed $(DBT_SOURCES)
	cd dbt_project && SLUICE_WAREHOUSE_PATH=$(SLUICE_WAREHOUSE_PATH) $(BIN)/dbt parse --quiet --profiles-dir .

dbt-docs: $(SLUICE_DBT_DOCS_DIR)/index.html  ## generate the dbt docs the UI serves (catalog from the warehouse file once built)
$(SLUICE_DBT_DOCS_DIR)/index.html: $(VENV)/.installed $(DBT_SOURCES) $(wildcard $(SLUICE_WAREHOUSE_PATH))
	include/scripts/dbt_docs.sh $(SLUICE_DBT_DOCS_DIR)

airflow-home: $(AIRFLOW_HOME)/.ready  ## migrate the metadata DB and create pools
$(AIRFLOW_HOME)/.ready: $(VENV)/.installed include/airflow/pools.json
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log
	$(BIN)/airflow pools import include/airflow/pools.json > /dev/null
	touch $@

setup: install connectors dbt-manifest airflow-home

# Test workers (pytest-xdist): a file's tests stay on one worker, so its module fixtures
# are made once; the end-to-end runs mostly wait on Airflow, so two workers overlap them
# on two cores. (--dist loadgroup does not group on pytest 9.2: pytest-dev/pytest-xdist#1386.)
TEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

.PHONY: run up backfill test test-fast bench lint clean
run: setup  ## run one complete 6-hour batch through every platform DAG (BATCH=... to choose, DAG=... for one)
	$(BIN)/python include/scripts/run_batch.py $(if $(BATCH),--batch $(BATCH)) $(if $(DAG),--dag $(DAG))

up: setup dbt-docs  ## serve the Airflow UI on localhost:8080 with scheduler, DAG processor and triggerer
	include/scripts/up.sh

backfill: setup  ## make backfill START=2026-11-20 END=2026-11-21 (END exclusive; every platform DAG, or DAG=<id>)
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make backfill START=<date> END=<date> [DAG=<dag_id>]"; exit 2; }
	$(BIN)/python include/scripts/backfill.py $(if $(DAG),--dag $(DAG)) --start $(START) --end $(END)

test: setup $(VENV2)/.installed  ## the whole test suite (Airflow 3 and Airflow 2.11)
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

test-fast: setup $(VENV2)/.installed  ## everything but the end-to-end runs and radosgw (about 3 minutes on 2 cores)
	$(BIN)/python -m pytest -m "not e2e and not s3" $(XDIST) $(PYTEST_ARGS)

bench: setup  ## benchmarks, written to bench/results.json (BENCH_ARGS="--only landing" for one)
	$(BIN)/python bench/run.py --output bench/results.json $(BENCH_ARGS)

# The sample company's file exports and their truth, in the embedded lake's folder
# (SLUICE_LAKE_ROOT when it names one): inbox/company/<stream>/ and truth/company/.
SAMPLE_LAKE = $(or $(SLUICE_LAKE_ROOT),$(SLUICE_DATA_DIR)/lake)
SAMPLE_ARGS = $(if $(BATCH),--batch $(BATCH)) $(if $(BATCHES),--batches $(BATCHES)) $(if $(SCALE),--scale $(SCALE)) $(if $(SEED),--seed $(SEED))
.PHONY: sample-company
sample-company: $(VENV)/.installed  ## the sample company's exports for BATCH=2026-11-20T00:00 (BATCHES=n, SCALE=, SEED=)
	@case "$(SAMPLE_LAKE)" in s3://*|s3a://*) echo "sample-company writes a lake folder, not $(SAMPLE_LAKE)"; exit 2;; esac
	PYTHONPATH=include $(BIN)/python -m sample_company --root "$(SAMPLE_LAKE)" $(SAMPLE_ARGS)

# Locks: runtime (pyproject.toml's dependencies at the stack's versions, what the image
# installs) and development (runtime + tools, held to the runtime lock's versions). uv
# keeps the versions already in an output file; delete a line there to upgrade a package.
COMPILE := $(UV) pip compile --quiet --generate-hashes --python-version 3.11 --no-header
.PHONY: locks connector-lock
locks: | $(UV)  ## recompile requirements*.txt from pyproject.toml and requirements*.in
	$(COMPILE) pyproject.toml requirements.in -o requirements.txt
	$(COMPILE) pyproject.toml requirements-dev.in -o requirements-dev.txt
	$(COMPILE) pyproject.toml requirements-airflow2.in -o requirements-airflow2.txt
	$(COMPILE) pyproject.toml requirements-airflow2-dev.in -o requirements-airflow2-dev.txt

# A connector's lock: its .in, with the versions its .overrides file (uv's --override)
# puts in place of pins the connector's metadata gets wrong.
CONNECTOR_LOCKS ?= include/connectors
connector-lock: | $(UV)  ## make connector-lock NAME=source-<name>: compile include/connectors/NAME.in (and NAME.overrides) into NAME.txt
	@test -n "$(NAME)" -a -f "$(CONNECTOR_LOCKS)/$(NAME).in" \
		|| { echo "usage: make connector-lock NAME=<name> ($(CONNECTOR_LOCKS)/<name>.in must exist)"; exit 2; }
	$(COMPILE) $(if $(wildcard $(CONNECTOR_LOCKS)/$(NAME).overrides),--override $(CONNECTOR_LOCKS)/$(NAME).overrides) \
		$(CONNECTOR_LOCKS)/$(NAME).in -o $(CONNECTOR_LOCKS)/$(NAME).txt

# The environment make gives every Airflow process, as shell declarations (bin/airflow uses it).
ENV_NAMES := $(shell sed -n 's/^export \([A-Za-z0-9_]*\).*/\1/p' include/airflow/env.mk)
.PHONY: env
env:  ## print the environment of make's Airflow processes: eval "$(make -s env)"
	@export -p | grep -E '^declare -x ($(subst $(eval) ,|,$(strip $(ENV_NAMES))))='

.PHONY: s3 s3-stop
s3:  ## a throwaway S3 server (Ceph radosgw) in .s3; prints the AWS variables to eval
	@include/scripts/s3.sh start

s3-stop:  ## stop the S3 server of make s3 and delete its data
	@include/scripts/s3.sh stop

lint: install  ## ruff for Python, import-linter for the layers, sqlfluff for the dbt SQL
	PYTHONPATH=plugins $(BIN)/lint-imports .importlinter --no-cache
	$(BIN)/ruff check plugins dags tests bench include
	$(BIN)/ruff format --check plugins dags tests bench include
	$(BIN)/sqlfluff lint dbt_project/models dbt_project/macros dbt_project/tests

clean:  ## remove runtime data and the Airflow home (keeps the virtualenvs)
	rm -rf .data $(AIRFLOW_HOME) dbt_project/target dbt_project/logs
