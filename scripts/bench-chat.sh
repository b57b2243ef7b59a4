#!/usr/bin/env bash
# Chat delivery benchmark (issue 5): message send → pushed to every online member device, for a
# 2-member and a 50-member MLS group, with 1,000 devices connected over Socket.IO; the server's
# CPU and memory. The load is crates/securevox-client/examples/bench_chat (its doc comment says
# exactly what is measured); this script builds it and the server in release, and for each
# repetition starts a fresh `securevox serve` (empty SQLite data directory, free port), runs it
# against that process (`--server-pid`: CPU and RSS are read from /proc for the server alone),
# and stops the server.
#
# Server configuration: registration open; the per-IP rate limits off (every client is
# 127.0.0.1); the free profile's user limits off (50 registered users, 15 active, 30 daily
# active would refuse or flag 1,000 users); access tokens valid for a day (the pre-encrypted
# sends reuse one); the capacity thresholds at 100 % (a disk past 80 % would start clean-ups
# mid-run); the embedded TURN server off (not measured, and its port may be taken).
#
# Usage: scripts/bench-chat.sh
#   knobs (env): REPS=3  DEVICES=1000  CHAT_GROUPS=2:500,50:200  WINDOW=8
#     MODES=isolated,sequential,window,client  WARMUP=20  VERIFY_DEVICES=3
#     PIN=shared|pinned (pinned: server on CPU 0, benchmark on CPU 1)
#     OUT_DIR=target/bench-chat  EXTRA_ARGS="" (more bench_chat run flags)
#     QUIET_MAX_CORES=0.15 (wait before each repetition, and before each judged run, until the
#       machine uses less)
#     QUIET_WAIT_S=600
# Output: $OUT_DIR/results-<stamp>.jsonl (one line per repetition), $OUT_DIR/summary-<stamp>.md,
#   server and benchmark logs in $OUT_DIR/logs-<stamp>/.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

REPS=${REPS:-3}
DEVICES=${DEVICES:-1000}
CHAT_GROUPS=${CHAT_GROUPS:-2:500,50:200}
WINDOW=${WINDOW:-8}
MODES=${MODES:-isolated,sequential,window,client}
WARMUP=${WARMUP:-20}
VERIFY_DEVICES=${VERIFY_DEVICES:-3}
PIN=${PIN:-shared}
OUT_DIR=${OUT_DIR:-$ROOT/target/bench-chat}
EXTRA_ARGS=${EXTRA_ARGS:-}
QUIET_WAIT_S=${QUIET_WAIT_S:-600}
QUIET_MAX_CORES=${QUIET_MAX_CORES:-0.15}

# shellcheck source=scripts/bench/prelude.sh
. "$ROOT/scripts/bench/prelude.sh"
bench_prelude bench-chat

log "building release"
{ cargo build --release -q -p securevox --bin securevox && cargo build --release -q -p securevox-client --example bench_chat; } || { log "build failed"; exit 1; }
# private copies: a rebuild of target/release during the repetitions must not change what is measured
cp "$ROOT/target/release/securevox" "$WORK/securevox"
cp "$ROOT/target/release/examples/bench_chat" "$WORK/bench_chat"
# provenance: commit, a hash of uncommitted changes (tracked diff + untracked files), the binary's hash
dirty=$( { git diff HEAD -- crates Cargo.toml Cargo.lock; git ls-files -z --others --exclude-standard -- crates | xargs -0 -r cat; } | sha256sum | cut -c1-12)
BUILD="$(git rev-parse --short HEAD)"
[ -n "$(git status --porcelain -- crates Cargo.toml Cargo.lock)" ] && BUILD="$BUILD+dirty:$dirty"
BUILD="$BUILD bin:$(sha256sum "$WORK/securevox" | cut -c1-12)"
log "measuring $BUILD"

export SECUREVOX_AUTH_REGISTRATION=open SECUREVOX_AUTH_ACCESS_TOKEN_TTL_S=86400
export SECUREVOX_RATE_LIMITS_REGISTER_PER_MINUTE=0 SECUREVOX_RATE_LIMITS_LOGIN_PER_MINUTE=0 SECUREVOX_RATE_LIMITS_API_PER_SECOND=0
export SECUREVOX_LIMITS_MAX_REGISTERED_USERS=0 SECUREVOX_LIMITS_MAX_ACTIVE_USERS=0 SECUREVOX_LIMITS_MAX_DAILY_ACTIVE_USERS=0
export SECUREVOX_CAPACITY_DISK_THRESHOLD_PERCENT=100 SECUREVOX_CAPACITY_MEMORY_THRESHOLD_PERCENT=100
export SECUREVOX_TURN_ENABLED=false SECUREVOX_LOG_LEVEL=warn

if [ "$PIN" = pinned ]; then SRV_PFX=(taskset -c 0); LOAD_PFX=(taskset -c 1); else SRV_PFX=(); LOAD_PFX=(); fi

# start_server DATA LOGNAME: starts it in the background; sets SPID and url
start_server() {
  "${SRV_PFX[@]}" "$WORK/securevox" serve --listen 127.0.0.1:0 --data-dir "$1" >"$LOGS/$2.out" 2>"$LOGS/$2.log" &
  SPID=$!
  url=""
  for _ in $(seq 1 200); do
    url=$(sed -n 's/^securevox listening on //p' "$LOGS/$2.out" 2>/dev/null)
    [ -n "$url" ] && break
    kill -0 "$SPID" 2>/dev/null || break; sleep 0.05
  done
  [ -n "$url" ] || { log "securevox did not start; see $LOGS/$2.log"; exit 1; }
}
# stop_server: SIGTERM, up to 15 s, then SIGKILL; sets STOP_RC (its exit status)
stop_server() {
  kill "$SPID" 2>/dev/null
  for _ in $(seq 1 150); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$SPID" 2>/dev/null && kill -9 "$SPID"
  wait "$SPID" 2>/dev/null; STOP_RC=$?
  SPID=""
}

for rep in $(seq 1 "$REPS"); do
  data=$WORK/data-$rep
  wait_quiet
  busy_before=$QUIET_BUSY
  start_server "$data" "server-$rep"
  log "rep $rep/$REPS: server $SPID at $url (machine busy before: $busy_before cores)"
  # shellcheck disable=SC2086
  line=$("${LOAD_PFX[@]}" "$WORK/bench_chat" run --url "$url" --server-pid "$SPID" --devices "$DEVICES" \
    --groups "$CHAT_GROUPS" --modes "$MODES" --window "$WINDOW" --warmup "$WARMUP" \
    --verify-devices "$VERIFY_DEVICES" --quiet-max-cores "$QUIET_MAX_CORES" --work-dir "$WORK/profiles-$rep" $EXTRA_ARGS 2>"$LOGS/bench-$rep.log" | tail -n 1)
  rc=$?
  alive=true; kill -0 "$SPID" 2>/dev/null || alive=false
  stop_server; src=$STOP_RC
  rm -rf "$data" "$WORK/profiles-$rep"
  warnings=$(grep -c -E "WARN|ERROR" "$LOGS/server-$rep.log"); panics=$(grep -c "panicked at" "$LOGS/server-$rep.log")
  if ! echo "$line" | jq -e . >/dev/null 2>&1; then
    log "rep $rep failed (exit $rc); see $LOGS/bench-$rep.log:"; tail -n 5 "$LOGS/bench-$rep.log" >&2
    continue
  fi
  echo "$line" | jq -c --arg build "$BUILD" --argjson rep "$rep" --arg pin "$PIN" --argjson busy "$busy_before" \
    --argjson alive "$alive" --argjson src "$src" --argjson warnings "${warnings:-0}" --argjson panics "${panics:-0}" \
    --arg date "$(date -u +%FT%TZ)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
    '{rep: $rep, date: $date, build: $build, pin: $pin, machine_busy_cores_before: $busy, loadavg_after: $load,
      server_alive_at_end: $alive, server_exit_code: $src, server_log_warnings: $warnings, server_panics: $panics} + .' >>"$OUT"
  grep -F " msgs:" "$LOGS/bench-$rep.log" >&2
  sleep 1
done

{
  echo "# Chat delivery benchmark, $STAMP"
  echo
  echo "build $BUILD; $(nproc) cores; REPS=$REPS DEVICES=$DEVICES CHAT_GROUPS=$CHAT_GROUPS WINDOW=$WINDOW PIN=$PIN"
  echo
  "$WORK/bench_chat" summarize "$OUT"
} | tee "$OUT_DIR/summary-$STAMP.md"
log "results: $OUT; summary: $OUT_DIR/summary-$STAMP.md; logs: $LOGS"
