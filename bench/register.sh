#!/usr/bin/env bash
# Registration throughput with the whole policy gate on and durable
# storage (SQLite WAL), beside baselines measured in the same run: the
# same server answering its discovery document (no policy, no write), and,
# when tests/interop/node_modules is installed, the MCP TypeScript SDK's
# reference authorization server (clients in memory only).
# Usage: bench/register.sh [SECONDS]   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
cargo build --release -p regwatch >/dev/null
DATA=$(mktemp -d)
PORT=${BENCH_PORT:-18480}
# Rate limiting is per source and the benchmark is one source: lift it,
# everything else (validation, redirect rules, hashing, outbox) stays on.
REGWATCH_AUTHZ__RATE_LIMIT__PER_MINUTE=0 REGWATCH_USER=bench REGWATCH_PASSWORD=bench-password-123 \
  ./target/release/regwatch up --data-dir "$DATA" --authz-listen 127.0.0.1:$PORT >"$DATA/log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$PORT/.well-known/oauth-authorization-server >/dev/null && break; sleep 0.1; done
URL=http://127.0.0.1:$PORT
wrk -t2 -c4 -d2s -s bench/register.lua "$URL" >/dev/null   # warm-up
base=$(wrk -t2 -c4 -d"${DUR}s" "$URL/.well-known/oauth-authorization-server" | awk '/Requests\/sec/ {print $2}')
out=$(wrk -t2 -c4 -d"${DUR}s" --latency -s bench/register.lua "$URL")
reg=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
errs=$(echo "$out" | awk -F'errors_status=' '/BENCH/ {split($2,a," "); print a[1]}')
p99=$(echo "$out" | awk -F'p99_ms=' '/BENCH/ {print $2}')
rows=$(sqlite3 "$DATA/authz.db" "select count(*) from clients; select count(*) from outbox" 2>/dev/null | paste -sd/ || echo "?")
echo "registrations/s: $reg (non-2xx: $errs, p99 ${p99} ms)"
echo "baseline (GET discovery, same server, same run): $base req/s"
awk -v r="$reg" -v b="$base" 'BEGIN {printf "ratio registration/baseline: %.2f\n", r/b}'
echo "clients/outbox rows written: $rows"
if command -v node >/dev/null && [ -d tests/interop/node_modules/@modelcontextprotocol/sdk ]; then
  PEER_PORT=$((PORT + 10))
  (cd tests/interop && exec node bench-peer-sdk-as.mjs $PEER_PORT) >"$DATA/peer.log" 2>&1 &
  PEER=$!
  trap 'kill $PID $PEER 2>/dev/null; wait $PID $PEER 2>/dev/null; rm -rf "$DATA"' EXIT
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$PEER_PORT/.well-known/oauth-authorization-server >/dev/null && break; sleep 0.1; done
  wrk -t2 -c4 -d2s -s bench/register.lua "http://127.0.0.1:$PEER_PORT" >/dev/null
  peer=$(wrk -t2 -c4 -d"${DUR}s" -s bench/register.lua "http://127.0.0.1:$PEER_PORT" | awk '/Requests\/sec/ {print $2}')
  echo "MCP TypeScript SDK reference AS (in memory), same run: $peer registrations/s"
  awk -v r="$reg" -v b="$peer" 'BEGIN {printf "ratio regwatch/SDK AS: %.2f\n", r/b}'
fi
