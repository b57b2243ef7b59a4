#!/usr/bin/env bash
# HTTP performance of `securevox serve` (release build, SQLite, this machine):
#   idle resident memory after start, and throughput / latency with 50 concurrent connections
#   for GET /health (no auth, no database: the in-process baseline), GET /api/v1/me (JWT +
#   session lookup) and POST /api/v1/auth/login (argon2id verification + new session).
# Needs wrk (apt-get install wrk). Usage: scripts/bench-http.sh [seconds per run, default 15]
# Rate limits are switched off for the run (they would otherwise be what is measured).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-15}
connections=50
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

cargo build --release -q -p securevox
bin=$PWD/target/release/securevox
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

export SECUREVOX_RATE_LIMITS_LOGIN_PER_MINUTE=0 SECUREVOX_RATE_LIMITS_REGISTER_PER_MINUTE=0
export SECUREVOX_RATE_LIMITS_API_PER_SECOND=0 SECUREVOX_LOG_LEVEL=warn
"$bin" serve --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
base=$(sed -n 's/^securevox listening on //p' "$work/out")
until curl -sf "$base/health" >/dev/null; do sleep 0.1; done
sleep 2
rss_idle=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")

token=$(curl -sf "$base/api/v1/auth/register" -H 'content-type: application/json' \
  -d '{"username":"bench","password":"bench password 1234"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

run() { # name, wrk args…
  local name=$1; shift
  local out; out=$(wrk -t2 -c"$connections" -d"${duration}s" --latency "$@")
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $5}' <<<"$out"); errors=${errors:-0}
  printf '| %-28s | %10s | %8s | %8s | %6s |\n' "$name" "$rps" "$p50" "$p99" "$errors"
}

echo "securevox $("$bin" --version | awk '{print $2}'), $(nproc) cores, ${connections} connections, ${duration}s per run, wrk on the same machine"
echo
echo "| request                      |  req/s     |  p50     |  p99     | non-2xx |"
echo "|------------------------------|-----------:|---------:|---------:|-------:|"
run "GET /health (baseline)" "$base/health"
run "GET /api/v1/me" -H "Authorization: Bearer $token" "$base/api/v1/me"
run "POST /api/v1/auth/login" -s scripts/bench/login.lua "$base/api/v1/auth/login"
rss_after=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
echo
echo "resident memory: idle after start ${rss_idle} KiB; after the runs ${rss_after} KiB"
