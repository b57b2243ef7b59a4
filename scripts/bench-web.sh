#!/usr/bin/env bash
# Web client figures (issue 6; recorded, not asserted): the release server with the built web
# app, on an empty SQLite database, driven by headless Chromium (tests/browser/perf.mjs):
# cold page load (bytes, time to interactive), message send → shown on the other page, and
# call click → media connected. Needs what the browser tests need (Debian's chromium,
# `npm ci --prefix tests/browser`, `npm ci --prefix web`).
# Usage: scripts/bench-web.sh [rounds, default 10]   (SECUREVOX_BIN=path: measure that binary)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}

if [ -z "${SECUREVOX_BIN:-}" ]; then
  npm run --prefix web build >/dev/null
  cargo build --release -q -p securevox
fi
# SECUREVOX_BIN: an already built release server (with its web client) to measure instead.
bin=${SECUREVOX_BIN:-$PWD/target/release/securevox}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# Both pages share one address: the per-IP limits would otherwise be what is measured.
export SECUREVOX_RATE_LIMITS_LOGIN_PER_MINUTE=0 SECUREVOX_RATE_LIMITS_REGISTER_PER_MINUTE=0
export SECUREVOX_RATE_LIMITS_API_PER_SECOND=0 SECUREVOX_LOG_LEVEL=warn SECUREVOX_TURN_ENABLED=false
"$bin" serve --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
base=$(sed -n 's/^securevox listening on //p' "$work/out")
until curl -sf "$base/health" >/dev/null; do sleep 0.1; done

echo "securevox $("$bin" --version | awk '{print $2}'), $(nproc) cores, chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), ${rounds} rounds" >&2
node tests/browser/perf.mjs "$base" "$rounds"
