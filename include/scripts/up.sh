#!/usr/bin/env bash
# Serve Airflow on the embedded defaults: API server + UI, scheduler, DAG processor and
# triggerer, each at low parallelism. Ctrl-C stops every process started here: they run
# in their own process group, which is signalled as a whole.
set -euo pipefail
BIN="$(dirname "$0")/../../.venv/bin"
LOGS="$AIRFLOW_HOME/up-logs"
mkdir -p "$LOGS"
PASSWORDS="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"

pgid=""
cleanup() {
  trap - INT TERM EXIT
  if [ -n "$pgid" ]; then
    echo; echo "stopping Airflow (process group $pgid)"
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$pgid" 2>/dev/null || true
  fi
}
trap cleanup INT TERM EXIT

setsid bash -c "
  '$BIN/airflow' api-server --port '$AIRFLOW__API__PORT' > '$LOGS/api-server.log' 2>&1 &
  '$BIN/airflow' scheduler > '$LOGS/scheduler.log' 2>&1 &
  '$BIN/airflow' dag-processor > '$LOGS/dag-processor.log' 2>&1 &
  '$BIN/airflow' triggerer > '$LOGS/triggerer.log' 2>&1 &
  wait
" &
leader=$!
pgid=$(ps -o pgid= "$leader" | tr -d ' ')
echo "${pgid}" > "$AIRFLOW_HOME/up.pgid"

for _ in $(seq 90); do
  curl -fsS "http://localhost:$AIRFLOW__API__PORT/api/v2/monitor/health" > /dev/null 2>&1 && break
  kill -0 "$leader" 2>/dev/null || { echo "Airflow exited; see $LOGS"; exit 1; }
  sleep 1
done
echo "Airflow is up: http://localhost:$AIRFLOW__API__PORT  (logs: $LOGS)"
echo "Sign in as: $(sed -e 's/[{}" ]//g' -e 's/:/ \/ password: /' "$PASSWORDS" 2>/dev/null || echo "admin (password in $PASSWORDS)")"
echo "Ctrl-C stops everything."
wait "$leader"
