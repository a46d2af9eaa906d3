#!/usr/bin/env bash
# Pipeline throughput: Kafka (tansu) → ClickHouse 18.16, and the embedded
# outbox → SQLite, each beside a ceiling measured in the same run.
# See BENCHMARKS.md, "Pipeline throughput (regwatch-pipeline)".
#
# Usage: bench/pipeline.sh [N]          (N events, default 300000)
#   BENCH_PHASES=consume,chraw,chstore,pipe,pipedetect,rebuild,embedded  (subset; default all)
#   TANSU=/path/to/tansu                 (default: tansu on PATH or ~/.cargo/bin/tansu)
#   PERF=1                               (record the run with `perf record -g`, report to $WORK/perf.txt)
#
# Starts its own tansu broker (memory storage) and ClickHouse server on free
# ports, in a scratch directory, and stops them on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300000}
TANSU=${TANSU:-$(command -v tansu || echo "$HOME/.cargo/bin/tansu")}
"$TANSU" --version >/dev/null || { echo "tansu not found (cargo install tansu --locked --features dynostore,postgres)" >&2; exit 1; }

echo "building (release, bench profile)…" >&2
BIN=$(cargo bench -p regwatch-pipeline --bench throughput --no-run --message-format=json 2>/dev/null \
  | jq -r 'select(.reason=="compiler-artifact" and .target.name=="throughput" and .executable!=null) | .executable' | tail -1)
[ -x "$BIN" ] || { echo "build failed: cargo bench -p regwatch-pipeline --bench throughput --no-run" >&2; exit 1; }

WORK=$(mktemp -d /tmp/rwbench.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
KPORT=$(free_port); HPORT=$(free_port); TPORT=$(free_port)
TANSU_PID=
cleanup() {
  [ -n "$TANSU_PID" ] && kill "$TANSU_PID" 2>/dev/null || true
  [ -f "$WORK/ch/server.pid" ] && kill "$(cat "$WORK/ch/server.pid")" 2>/dev/null || true
  sleep 1
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

"$TANSU" broker --listener-url "tcp://127.0.0.1:$KPORT" --advertised-listener-url "tcp://127.0.0.1:$KPORT" \
  --storage-engine memory://tansu/ >"$WORK/tansu.log" 2>&1 &
TANSU_PID=$!
CH_URL=$(deploy/local/clickhouse-up.sh "$WORK/ch" "$HPORT" "$TPORT")
for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$KPORT") 2>/dev/null && break; sleep 0.1; done

export BENCH_BROKERS="127.0.0.1:$KPORT" BENCH_CLICKHOUSE_URL="$CH_URL" BENCH_N="$N" BENCH_DIR="$WORK" \
  BENCH_TANSU_PID="$TANSU_PID" BENCH_CLICKHOUSE_PID="$(cat "$WORK/ch/server.pid")" CLK_TCK="$(getconf CLK_TCK)"
echo "tansu $("$TANSU" --version | awk '{print $2}') on $BENCH_BROKERS (pid $TANSU_PID), ClickHouse $(curl -fsS "$CH_URL/?query=SELECT%20version()") at $CH_URL; $(nproc) cores; $(date -u +%FT%TZ)"
if [ -n "${PERF:-}" ]; then
  perf record -g -o "$WORK/perf.data" -- "$BIN" --bench
  perf report -i "$WORK/perf.data" --no-children --percent-limit 1 --stdio >"$WORK/perf.txt" 2>/dev/null
  KEEP=1; echo "perf report: $WORK/perf.txt"
else
  "$BIN" --bench
fi
