#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster (no Docker) and print its URL.
# Usage: deploy/local/pg-up.sh [DATA_DIR] [PORT]
# Needs Debian's `postgresql` package. Runs the server as the `postgres`
# user when started as root (initdb refuses root).
set -euo pipefail
DATA=${1:-/tmp/regwatch-pg}
PORT=${2:-55432}
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
RUN=()
if [ "$(id -u)" = 0 ]; then RUN=(runuser -u postgres --); fi
if ! "${RUN[@]}" "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  if [ ! -f "$DATA/PG_VERSION" ]; then
    mkdir -p "$DATA"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$DATA"
    "${RUN[@]}" "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  "${RUN[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w \
    -o "-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200" start >/dev/null
fi
for _ in $(seq 1 50); do
  if "$BIN/pg_isready" -h 127.0.0.1 -p "$PORT" >/dev/null 2>&1; then
    echo "postgres://postgres@127.0.0.1:$PORT/postgres"
    exit 0
  fi
  sleep 0.2
done
echo "postgres did not become ready; see $DATA/server.log" >&2
exit 1
