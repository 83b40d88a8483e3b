#!/usr/bin/env bash
# A throwaway S3 server in one folder: Ceph's radosgw over one monitor and one in-memory OSD.
#
#   include/scripts/s3.sh start [DIR]   start the server (a fresh cluster each time); prints
#                                       the environment that points AWS clients at it
#   include/scripts/s3.sh env [DIR]     print that environment again
#   include/scripts/s3.sh stop [DIR]    stop the server and delete its data
#
# DIR defaults to .s3 in the project folder. Everything listens on 127.0.0.1 on free ports
# chosen at start, so several servers never collide. The data lives in memory (memstore, 2
# GiB): test and development data only. The printed lines are `export NAME=value`, so
# `eval "$(include/scripts/s3.sh start)"` sets AWS_ENDPOINT_URL and the access keys (made
# up at start, for this server alone).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
command=${1:-}
DIR=${2:-$ROOT/.s3}

usage() {
  echo "usage: $0 start|env|stop [DIR]" >&2
  exit 2
}

[ -n "$command" ] || usage
DIR=$(realpath -m "$DIR")
CONF=$DIR/ceph.conf

need_binaries() {
  local missing=()
  for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool uuidgen; do
    command -v "$tool" > /dev/null || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    cat >&2 << EOF
Ceph binaries not found: ${missing[*]}
Install them with: sudo apt-get install -y ceph-mon ceph-osd radosgw uuid-runtime   (Debian 12)
EOF
    exit 3
  fi
}

free_ports() {
  python3 - "$1" << 'EOF'
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))
EOF
}

print_env() {
  [ -f "$DIR/env" ] || {
    echo "no S3 server in $DIR: run $0 start" >&2
    exit 1
  }
  cat "$DIR/env"
}

kill_daemons() {
  local pid
  for name in rgw osd mon; do
    if [ -f "$DIR/$name.pid" ]; then
      pid=$(cat "$DIR/$name.pid")
      kill "$pid" 2> /dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2> /dev/null || true
      rm -f "$DIR/$name.pid"
    fi
  done
}

fail() {
  echo "$1; last lines of $DIR/log:" >&2
  tail -n 5 "$DIR"/log/*.log >&2 2> /dev/null || true
  kill_daemons
  exit 1
}

start() {
  need_binaries
  kill_daemons
  rm -rf "$DIR"
  mkdir -p "$DIR"/{run,log,mon,osd,rgw}
  local fsid mon_v2 mon_v1 rgw_port
  fsid=$(uuidgen)
  read -r mon_v2 mon_v1 rgw_port <<< "$(free_ports 3)"
  cat > "$CONF" << EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]
mon initial members = a
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms client mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 5
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 2147483648
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
mon data = $DIR/mon/\$cluster-\$id
osd data = $DIR/osd/\$cluster-\$id
keyring = $DIR/keyring
[client.rgw]
# without tcp_nodelay every response with a body waits ~40 ms (Nagle's algorithm against
# delayed ACKs on loopback)
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw data = $DIR/rgw
EOF
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' > /dev/null
  monmaptool --create --addv a "[v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]" --fsid "$fsid" "$DIR/monmap" > /dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" > "$DIR/log/mkfs.out" 2>&1 \
    || fail "the monitor's store could not be made"
  setsid ceph-mon -c "$CONF" -i a -f > "$DIR/log/mon.out" 2>&1 < /dev/null &
  echo $! > "$DIR/mon.pid"
  local uuid id
  uuid=$(uuidgen)
  id=$(timeout 60 ceph -c "$CONF" osd new "$uuid" 2> "$DIR/log/osd-new.out") || fail "the monitor did not come up"
  mkdir -p "$DIR/osd/ceph-$id"
  ceph-osd -c "$CONF" -i "$id" --mkfs --osd-uuid "$uuid" > "$DIR/log/osd-mkfs.out" 2>&1 \
    || fail "the OSD could not be made"
  setsid ceph-osd -c "$CONF" -i "$id" -f > "$DIR/log/osd.out" 2>&1 < /dev/null &
  echo $! > "$DIR/osd.pid"
  setsid radosgw -c "$CONF" -n client.rgw -f > "$DIR/log/rgw.out" 2>&1 < /dev/null &
  echo $! > "$DIR/rgw.pid"
  local endpoint=http://127.0.0.1:$rgw_port up=false
  for _ in $(seq 1 240); do
    if curl -fs -o /dev/null "$endpoint/"; then
      up=true
      break
    fi
    sleep 0.5
  done
  $up || fail "radosgw did not answer on $endpoint within 120 s"
  local access secret
  access=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
  secret=$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n')
  timeout 60 radosgw-admin -c "$CONF" -n client.rgw user create --uid=sluice --display-name=sluice \
    --access-key="$access" --secret="$secret" > "$DIR/log/user.out" 2>&1 || fail "the S3 user could not be made"
  # radosgw rejects the streaming checksums newer AWS SDKs send by default (HTTP 411)
  cat > "$DIR/env" << EOF
export AWS_ENDPOINT_URL=$endpoint
export AWS_ACCESS_KEY_ID=$access
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_DEFAULT_REGION=us-east-1
export AWS_ALLOW_HTTP=true
export AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED
export AWS_RESPONSE_CHECKSUM_VALIDATION=WHEN_REQUIRED
EOF
  print_env
}

case "$command" in
  start) start ;;
  env) print_env ;;
  stop)
    kill_daemons
    rm -rf "$DIR"
    ;;
  *) usage ;;
esac
