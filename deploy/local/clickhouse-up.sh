#!/usr/bin/env bash
# Start a throwaway ClickHouse server (no Docker) and print its HTTP URL.
# Usage: deploy/local/clickhouse-up.sh [DATA_DIR] [HTTP_PORT] [TCP_PORT]
#
# Runs Debian's clickhouse-server (18.16, see shared/guides/infra.md) as a
# process of our own: its own data directory, its own ports, logs inside the
# data directory. Installs the package when it is missing. Safe to run again:
# when something already answers on HTTP_PORT it only prints the URL.
# Stop it with: kill "$(cat DATA_DIR/server.pid)"
set -euo pipefail
DATA=${1:-/tmp/regwatch-ch}
HTTP_PORT=${2:-58123}
TCP_PORT=${3:-59000}
URL="http://127.0.0.1:$HTTP_PORT"

ready() { curl -fsS "$URL/?query=SELECT%201" 2>/dev/null | grep -qx 1; }

if ready; then
  echo "$URL"
  exit 0
fi

if ! command -v clickhouse-server >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null
fi

mkdir -p "$DATA"/{tmp,uf,fs}
DATA=$(cd "$DATA" && pwd)
# The packaged config writes to /var/lib and /var/log and listens on 8123 and
# 9000; every one of those is overridden here so several servers can share a
# machine. Interserver replication is not used.
nohup clickhouse-server --config-file=/etc/clickhouse-server/config.xml -- \
  --path="$DATA/" --tmp_path="$DATA/tmp/" --user_files_path="$DATA/uf/" \
  --format_schema_path="$DATA/fs/" --logger.log="$DATA/log" \
  --logger.errorlog="$DATA/err" --logger.console=0 \
  --http_port="$HTTP_PORT" --tcp_port="$TCP_PORT" \
  --interserver_http_port=$((TCP_PORT + 9)) --listen_host=127.0.0.1 \
  >"$DATA/stdout" 2>&1 &
echo $! >"$DATA/server.pid"

for _ in $(seq 1 150); do
  if ready; then
    echo "$URL"
    exit 0
  fi
  if ! kill -0 "$(cat "$DATA/server.pid")" 2>/dev/null; then
    echo "clickhouse-server exited; see $DATA/err and $DATA/stdout" >&2
    tail -20 "$DATA/err" "$DATA/stdout" >&2 || true
    exit 1
  fi
  sleep 0.2
done
echo "clickhouse-server did not answer on $URL; see $DATA/err" >&2
exit 1
