# Environment of every Airflow process started by make (embedded defaults).
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX := glob
export AIRFLOW__CORE__PARALLELISM ?= 4
export AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG ?= 4
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS ?= admin:admin
export AIRFLOW__API__PORT ?= 8080
export AIRFLOW__API__WORKERS ?= 1
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL ?= 30
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK ?= False
export SLUICE_DATA_DIR ?= $(CURDIR)/.data
export SLUICE_WAREHOUSE_PATH ?= $(SLUICE_DATA_DIR)/warehouse/sluice.duckdb
export SLUICE_DBT_DOCS_DIR ?= $(CURDIR)/dbt_project/target/docs
export PYTHONPATH := $(CURDIR)/plugins$(if $(PYTHONPATH),:$(PYTHONPATH))
export NO_COLOR := 1
# No usage telemetry leaves the machine (Cosmos, dbt).
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export DO_NOT_TRACK := 1
export AIRFLOW__COSMOS__CACHE_DIR ?= $(AIRFLOW_HOME)/cosmos-cache
