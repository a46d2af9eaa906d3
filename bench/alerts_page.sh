#!/usr/bin/env bash
# GET /v1/alerts page cost on ClickHouse 18.16: the layout before migration
# 0006 against the current one, on the same alerts in the same run.
# See BENCHMARKS.md, "Alerts page (ClickHouse)".
#
# Usage: bench/alerts_page.sh [N]     (N alerts, default 100000)
#
# Starts its own ClickHouse server on free ports in a scratch directory and
# stops it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
WORK=$(mktemp -d /tmp/rwbench-alerts.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
HPORT=$(free_port); TPORT=$(free_port)
cleanup() {
  [ -f "$WORK/ch/server.pid" ] && kill "$(cat "$WORK/ch/server.pid")" 2>/dev/null || true
  sleep 1
  rm -rf "$WORK"
}
trap cleanup EXIT
URL=$(deploy/local/clickhouse-up.sh "$WORK/ch" "$HPORT" "$TPORT")
ALERTS=$N REGWATCH_BENCH_CLICKHOUSE_URL=$URL cargo bench -p regwatch-store --bench alerts_page
