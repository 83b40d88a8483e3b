#!/usr/bin/env bash
# A throwaway PostgreSQL cluster in one folder, for an Airflow metadata database.
#
#   include/scripts/postgres.sh start [DIR]   initialise DIR on first use, start the server,
#                                             create the database `airflow`; prints its URL
#   include/scripts/postgres.sh url [DIR]     print the SQLAlchemy URL
#   include/scripts/postgres.sh stop [DIR]    stop the server (the folder is kept)
#
# DIR defaults to .postgres in the project folder. The server listens only on a unix
# socket in DIR (no TCP port, so clusters never collide), trusts local connections and
# runs without fsync: test and development data only. The URL is the only thing written
# to stdout, so `export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=$(... start)` works.
# initdb and pg_ctl refuse to run as root: as root the server runs as the `postgres`
# system user (made by Debian's postgresql package), which then owns DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
command=${1:-}
DIR=${2:-$ROOT/.postgres}
DATABASE=airflow
PORT=5432 # only names the socket file: .s.PGSQL.5432

usage() {
  echo "usage: $0 start|url|stop [DIR]" >&2
  exit 2
}

[ -n "$command" ] || usage
DIR=$(realpath -m "$DIR")
if [[ ! $DIR =~ ^[A-Za-z0-9/._+-]+$ ]]; then
  echo "$DIR: use a folder whose path has only letters, digits and / . _ + -" >&2
  exit 2
fi
DATA=$DIR/data
LOG=$DIR/postgres.log

url() {
  echo "postgresql+psycopg2://$DATABASE@/$DATABASE?host=$DIR&port=$PORT"
}

server_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -n 1)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    cat >&2 << EOF
PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin.
Install them with: sudo apt-get install -y postgresql   (Debian/Ubuntu; no service needs to run)
EOF
    exit 3
  fi
  echo "$bin"
}

# Run a server program as the cluster's owner: the postgres system user when we are root.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

running() {
  [ -f "$DATA/postmaster.pid" ] && as_owner "$BIN/pg_ctl" status -D "$DATA" > /dev/null 2>&1
}

start() {
  # the socket path must fit in sun_path (107 bytes)
  if [ $((${#DIR} + 15)) -gt 107 ]; then
    echo "$DIR is too long a path for the server's unix socket: choose a shorter folder" >&2
    exit 1
  fi
  mkdir -p "$DIR"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres > /dev/null 2>&1 || {
      echo "running as root needs the postgres system user: apt-get install -y postgresql" >&2
      exit 3
    }
    chown postgres: "$DIR"
    chmod 700 "$DIR"
    if ! runuser -u postgres -- test -w "$DIR"; then
      echo "the postgres user cannot reach $DIR (a parent folder is closed to it): choose another folder" >&2
      exit 1
    fi
  fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA"
    as_owner "$BIN/initdb" -D "$DATA" -U "$DATABASE" --auth=trust --no-locale --encoding=UTF8 \
      > "$DIR/initdb.log" 2>&1 < /dev/null || {
      cat "$DIR/initdb.log" >&2
      exit 1
    }
    cat >> "$DATA/postgresql.conf" << EOF

# throwaway metadata database (include/scripts/postgres.sh)
listen_addresses = ''
unix_socket_directories = '$DIR'
port = $PORT
max_connections = 200
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  fi
  if ! running; then
    as_owner "$BIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 > /dev/null < /dev/null || {
      tail -n 20 "$LOG" >&2
      exit 1
    }
  fi
  local psql=("$BIN/psql" -h "$DIR" -p "$PORT" -U "$DATABASE" -d postgres -X -q -t -A)
  if [ -z "$(as_owner "${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'" < /dev/null)" ]; then
    as_owner "${psql[@]}" -c "CREATE DATABASE $DATABASE" < /dev/null > /dev/null
  fi
  url
}

stop() {
  if running; then
    as_owner "$BIN/pg_ctl" stop -D "$DATA" -m fast -w -t 60 > /dev/null < /dev/null
  fi
}

case "$command" in
  start)
    BIN=$(server_bin)
    start
    ;;
  url) url ;;
  stop)
    [ -f "$DATA/postmaster.pid" ] || exit 0
    BIN=$(server_bin)
    stop
    ;;
  *) usage ;;
esac
