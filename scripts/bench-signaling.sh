#!/usr/bin/env bash
# Signaling benchmark: `securevox serve` against the Node.js reference call server
# (bench/signaling/node-server.js), side by side on this machine, with the same load generator
# (load.js) and the same scenarios as the baseline README:
#   relay-a      50 calls x 2 participants, 2000 ice_candidate per sender (window 32, e2e flow)
#   relay-b      10 calls x 4, 2000 per sender
#   relay-paced  50 calls x 2, 400 per sender, paced at 5000 msgs/s total, 1 s warm-up
#   connect-2k / connect-10k   N authenticated idle connections, held 5 s
#   (extra, not in the default list: relay-a-procs2 = relay-a with load.js --procs 2)
# Every run gets a fresh server process (ours: a fresh copy of a prepared data directory), and
# `--server-pid` is the server process itself, so its CPU and RSS come from /proc.
#
# Identities: SecureVox only accepts users it knows, calls it created and tokens it signed.
# USERS users (default 500) are registered once, into a template data directory, by a server
# that is then stopped; each run starts from a copy of it (so argon2's memory never shows up in
# the measured process). Relay runs start their calls through POST /api/v1/calls right before
# load.js; connect runs spread N connections round-robin over the users, each reusing its
# user's access token (one user, many devices).
#
# Usage: scripts/bench-signaling.sh
#   knobs (env): REPS=3  PINS="shared pinned"  SERVERS="securevox node"  AUTH=event|handshake
#     SCENARIOS="relay-a relay-b relay-paced connect-2k connect-10k"  USERS=500
#     BENCH_DIR=/work/shared/bench/signaling (copied to $OUT_DIR/harness, npm ci there)
#     OUT_DIR=target/bench-signaling  MAX_SECONDS=60  PORT_BASE=(20000 + 120*(PID%100))  EXTRA_LOAD_ARGS=""
#     QUIET_MAX_CORES=0.15 (wait before each run until other processes use less) QUIET_WAIT_S=600
#     OTHER_MAX=0.15 ATTEMPTS=3 (a run during which others used more CPU is redone, up to ATTEMPTS)
#     PERF=1 (profile our server during each load: $LOGS/<run>.perf.data, read with
#       `perf report -i … --no-children`; the profiler's own cost makes those runs' CPU figures
#       unusable for the comparison)
#     SERVER_BIN=path (measure this build of securevox instead of building target/release, e.g. one
#       with frame pointers for PERF=1: RUSTFLAGS="-C force-frame-pointers=yes" --target-dir …)
#     PERF=stat (both servers: count system calls by kind and context switches during each load
#       with `perf stat`: $LOGS/<run>.perf-stat.csv; cheap, but still not for the CPU comparison)
# Output: $OUT_DIR/results-<stamp>.jsonl (one line per run), $OUT_DIR/summary-<stamp>.md,
#   server logs in $OUT_DIR/logs-<stamp>/.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

REPS=${REPS:-3}
PINS=${PINS:-"shared pinned"}
SERVERS=${SERVERS:-"securevox node"}
SCENARIOS=${SCENARIOS:-"relay-a relay-b relay-paced connect-2k connect-10k"}
AUTH=${AUTH:-event}
USERS=${USERS:-500}
BENCH_DIR=${BENCH_DIR:-/work/shared/bench/signaling}
OUT_DIR=${OUT_DIR:-$ROOT/target/bench-signaling}
MAX_SECONDS=${MAX_SECONDS:-60}
# below the ephemeral range (32768+), which load.js's 10k client sockets use
PORT=${PORT_BASE:-$((20000 + ($$ % 100) * 120))}
EXTRA_LOAD_ARGS=${EXTRA_LOAD_ARGS:-}
export JWT_SECRET=${JWT_SECRET:-bench-secret}

# shellcheck source=scripts/bench/prelude.sh
. "$ROOT/scripts/bench/prelude.sh"
bench_prelude bench-signaling
HELPERS=$ROOT/scripts/bench

# ---------------------------------------------------------------- build and harness
if [ -n "${SERVER_BIN:-}" ]; then
  log "measuring $SERVER_BIN (not rebuilt)"
else
  log "building release"
  cargo build --release -q -p securevox || { log "build failed"; exit 1; }
fi
# a private copy: a rebuild of target/release during the matrix must not change what is measured
cp "${SERVER_BIN:-$ROOT/target/release/securevox}" "$WORK/securevox"
BIN=$WORK/securevox
# signaling only: the embedded TURN server's port would collide with a TURN server running
export SECUREVOX_TURN_ENABLED=false
# perf finds the symbols of the (deleted) private copy by build id
[ -n "${PERF:-}" ] && [ "$PERF" != stat ] && perf buildid-cache -a "$BIN"
PERF_STAT_EVENTS="raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_sendto,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_futex,context-switches"
# provenance: commit, a hash of uncommitted changes (tracked diff + untracked files), the binary's hash
dirty=$( { git diff HEAD -- crates third_party Cargo.toml Cargo.lock; git ls-files -z --others --exclude-standard -- crates third_party | xargs -0 -r cat; } | sha256sum | cut -c1-12)
BUILD="$(git rev-parse --short HEAD)"
[ -n "$(git status --porcelain -- crates third_party Cargo.toml Cargo.lock)" ] && BUILD="$BUILD+dirty:$dirty"
BUILD="$BUILD bin:$(sha256sum "$BIN" | cut -c1-12)"
log "measuring $BUILD"

HARNESS=$OUT_DIR/harness
if ! cmp -s "$BENCH_DIR/load.js" "$HARNESS/load.js" || ! cmp -s "$BENCH_DIR/package-lock.json" "$HARNESS/package-lock.json" \
   || ! cmp -s "$BENCH_DIR/node-server.js" "$HARNESS/node-server.js" || [ ! -d "$HARNESS/node_modules" ]; then
  log "copying $BENCH_DIR to $HARNESS and running npm ci"
  rm -rf "$HARNESS"; mkdir -p "$HARNESS"
  cp "$BENCH_DIR"/{load.js,node-server.js,package.json,package-lock.json,summarize.js} "$HARNESS"/
  chmod -R u+w "$HARNESS"
  (cd "$HARNESS" && npm ci --no-audit --no-fund >"$LOGS/npm-ci.log" 2>&1) || { log "npm ci failed, see $LOGS/npm-ci.log"; exit 1; }
fi

# ---------------------------------------------------------------- our server's configuration
export SECUREVOX_AUTH_REGISTRATION=open
export SECUREVOX_RATE_LIMITS_REGISTER_PER_MINUTE=0 SECUREVOX_RATE_LIMITS_LOGIN_PER_MINUTE=0 SECUREVOX_RATE_LIMITS_API_PER_SECOND=0
export SECUREVOX_LIMITS_MAX_CONCURRENT_CALLS=0 SECUREVOX_LIMITS_MAX_CALL_PARTICIPANTS_TOTAL=0 SECUREVOX_LIMITS_MAX_PARTICIPANTS_PER_CALL=4
export SECUREVOX_LIMITS_MAX_REGISTERED_USERS=0 SECUREVOX_LIMITS_MAX_ACTIVE_USERS=0 SECUREVOX_LIMITS_MAX_DAILY_ACTIVE_USERS=0
export SECUREVOX_LOG_LEVEL=warn
# the template's access tokens must outlive the whole matrix; calls must not time out while
# load.js connects (they are started right before it anyway)
export SECUREVOX_AUTH_ACCESS_TOKEN_TTL_S=86400 SECUREVOX_CALLS_RING_TIMEOUT_S=600

# Other work on the machine spoils the figures (a 2-core box): cpu_ticks and wait_quiet come from
# scripts/bench/prelude.sh; proc_ticks PID: utime+stime of a process.
QUIET_WAIT_S=${QUIET_WAIT_S:-600}
QUIET_MAX_CORES=${QUIET_MAX_CORES:-0.15}
OTHER_MAX=${OTHER_MAX:-0.15}   # a run during which others used more than this many cores is redone
ATTEMPTS=${ATTEMPTS:-3}
proc_ticks() { awk '{ sub(/.*\) /, ""); print $12+$13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo null; }

# start_ours DATA_DIR PORT LOGFILE [taskset prefix…]: sets SPID, waits for "listening"
start_ours() {
  local data=$1 port=$2 logf=$3; shift 3
  "$@" "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$data" >"$logf.out" 2>"$logf" &
  SPID=$!
  for _ in $(seq 1 200); do grep -q "listening on" "$logf.out" 2>/dev/null && return 0; kill -0 "$SPID" 2>/dev/null || break; sleep 0.05; done
  log "securevox did not start; see $logf"; return 1
}
start_node() {
  local port=$1 logf=$2; shift 2
  (cd "$HARNESS" && PORT=$port HOST=127.0.0.1 MAX_CALLS=1000 exec "$@" node node-server.js) >"$logf" 2>&1 &
  SPID=$!
  for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0; kill -0 "$SPID" 2>/dev/null || break; sleep 0.05; done
  log "node server did not start; see $logf"; return 1
}
# stop_server: SIGTERM, up to 15 s, then SIGKILL; sets STOP_ALIVE (was it still running) and
# STOP_RC (its exit status). Not in a subshell: it must wait for its own child.
stop_server() {
  STOP_ALIVE=true
  kill -0 "$SPID" 2>/dev/null || STOP_ALIVE=false
  kill "$SPID" 2>/dev/null
  for _ in $(seq 1 150); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$SPID" 2>/dev/null && kill -9 "$SPID"
  wait "$SPID" 2>/dev/null; STOP_RC=$?
  SPID=""
}

# ---------------------------------------------------------------- template identities
log "registering $USERS users into a template data directory (argon2; ~25-45/s)"
TEMPLATE=$WORK/template
PORT=$((PORT + 1))
start_ours "$TEMPLATE" "$PORT" "$LOGS/template.log" || exit 1
node "$HELPERS/signaling-identities.mjs" users --url "http://127.0.0.1:$PORT" --count "$USERS" --out "$WORK/users.json" || exit 1
stop_server
for n in 2000 10000; do
  node "$HELPERS/signaling-identities.mjs" connections --users "$WORK/users.json" --count "$n" --out "$WORK/conn-$n.json" || exit 1
done

scenario_args() {
  case "$1" in
    relay-a)     echo "--mode relay --calls 50 --participants 2 --messages 2000" ;;
    relay-b)     echo "--mode relay --calls 10 --participants 4 --messages 2000" ;;
    relay-paced) echo "--mode relay --calls 50 --participants 2 --messages 400 --rate 5000 --warmup-s 1" ;;
    relay-a-procs2) echo "--mode relay --calls 50 --participants 2 --messages 2000 --procs 2" ;;
    connect-2k)  echo "--mode connect --connections 2000 --hold-seconds 5" ;;
    connect-10k) echo "--mode connect --connections 10000 --hold-seconds 5" ;;
    *) log "unknown scenario $1"; return 1 ;;
  esac
}
scenario_shape() { # calls participants (relay) or connections (connect)
  case "$1" in
    relay-a|relay-paced|relay-a-procs2) echo "relay 50 2" ;;
    relay-b) echo "relay 10 4" ;;
    connect-2k) echo "connect 2000" ;;
    connect-10k) echo "connect 10000" ;;
  esac
}

# run_one SERVER SCENARIO PIN REP: one run in a fresh server; appends its JSON line to $OUT.
# Returns 3 when other processes used more than OTHER_MAX cores meanwhile: the line goes to
# discarded-*.jsonl instead, unless LAST (the last attempt) is "last".
run_one() {
  local server=$1 sc=$2 pin=$3 rep=$4 last=${5:-} url tag kind a b idle_rss line m0 m1 s0 s1 w0 w1 panics panics_run
  local tokens_arg=()
  if [ "$pin" = pinned ]; then SRV_PFX=(taskset -c 0); LOAD_PFX=(taskset -c 1); else SRV_PFX=(); LOAD_PFX=(); fi
  wait_quiet
  PORT=$((PORT + 1))
  url="http://127.0.0.1:$PORT"
  tag="$server-$sc-$pin-rep$rep"
  tokens_arg=()
  if [ "$server" = securevox ]; then
    rm -rf "$WORK/run"; cp -a "$TEMPLATE" "$WORK/run"
    start_ours "$WORK/run" "$PORT" "$LOGS/$tag.log" "${SRV_PFX[@]}" || return 1
  else
    start_node "$PORT" "$LOGS/$tag.log" "${SRV_PFX[@]}" || return 1
  fi
  sleep 1
  idle_rss=$(rss_kb "$SPID")
  read -r kind a b < <(scenario_shape "$sc")
  if [ "$server" = securevox ]; then
    if [ "$kind" = relay ]; then
      "${LOAD_PFX[@]}" node "$HELPERS/signaling-identities.mjs" calls --url "$url" --users "$WORK/users.json" \
        --calls "$a" --participants "$b" --out "$WORK/calls.json" 2>>"$LOGS/$tag.load.log" || { log "creating calls failed ($tag)"; stop_server; return 1; }
      tokens_arg=(--tokens "$WORK/calls.json")
    else
      tokens_arg=(--tokens "$WORK/conn-$a.json")
    fi
  fi
  rm -f "$WORK/order.jsonl"
  local perf_pid=""
  if [ "${PERF:-}" = stat ]; then
    perf stat -x, -e "$PERF_STAT_EVENTS" -p "$SPID" -o "$LOGS/$tag.perf-stat.csv" >/dev/null 2>&1 &
    perf_pid=$!
  elif [ -n "${PERF:-}" ] && [ "$server" = securevox ]; then
    perf record -q -e cpu-clock -F 1999 -g -p "$SPID" -o "$LOGS/$tag.perf.data" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  m0=$(cpu_ticks); s0=$(proc_ticks "$SPID"); w0=$(date +%s.%N)
  # shellcheck disable=SC2046,SC2086
  line=$(cd "$HARNESS" && ORDER_CHECK_OUT="$WORK/order.jsonl" NODE_OPTIONS="--require $HELPERS/signaling-order-check.cjs" \
    "${LOAD_PFX[@]}" node load.js --url "$url" $(scenario_args "$sc") "${tokens_arg[@]}" --auth "$AUTH" \
    --server-pid "$SPID" --max-seconds "$MAX_SECONDS" --quiet $EXTRA_LOAD_ARGS 2>>"$LOGS/$tag.load.log" | tail -n 1)
  m1=$(cpu_ticks); s1=$(proc_ticks "$SPID"); w1=$(date +%s.%N)
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null; fi
  panics_run=$(grep -c "panicked at" "$LOGS/$tag.log" 2>/dev/null); panics_run=${panics_run:-0}
  stop_server
  panics=$(grep -c "panicked at" "$LOGS/$tag.log" 2>/dev/null); panics=${panics:-0}
  BUILD=$BUILD node -e '
    const fs = require("fs");
    const [l, server, sc, pin, rep, auth, idle, alive, rc, panicsRun, panics, orderFile, quiet, m0, m1, s0, s1, w0, w1] = process.argv.slice(1);
    let o; try { o = JSON.parse(l); } catch { o = { error: "no JSON", raw: l }; }
    const ord = fs.existsSync(orderFile) ? fs.readFileSync(orderFile, "utf8").split("\n").filter(Boolean).map(JSON.parse) : [];
    const sum = (k) => ord.reduce((s, x) => s + (x[k] || 0), 0);
    const idleMb = idle === "null" ? null : +(idle / 1024).toFixed(1);
    const extra = { server, scenario: sc, pin, rep: +rep, auth, date: new Date().toISOString(), build: server === "securevox" ? process.env.BUILD : "node-server.js", server_rss_idle_mb: idleMb,
      order_checked: o.mode === "relay" ? sum("checked") : undefined, reordered: o.mode === "relay" ? sum("reordered") : undefined,
      server_alive_at_end: alive === "true", server_exit_code: +rc, server_panics_during_run: +panicsRun, server_panics_at_shutdown: panics - panicsRun,
      machine_busy_cores_before: +quiet };
    // CPU used by neither the server nor load.js while load.js ran (other processes), in cores
    if (typeof o.load_cpu_s === "number") extra.other_cpu_cores_during_run = +((((m1 - m0) - (s1 - s0)) / 100 - o.load_cpu_s) / (w1 - w0)).toFixed(2);
    if (o.mode === "connect" && idle !== "null" && o.connected) {
      // RSS after the hold (all connections idle and authenticated) minus RSS just after start
      extra.server_kb_per_idle_conn_vs_start = +(((o.server_rss_mb * 1024) - idle) / o.connected).toFixed(1);
    }
    console.log(JSON.stringify({ ...extra, ...o }));' \
    "$line" "$server" "$sc" "$pin" "$rep" "$AUTH" "$idle_rss" "$STOP_ALIVE" "$STOP_RC" "$panics_run" "$panics" "$WORK/order.jsonl" \
    "$QUIET_BUSY" "$m0" "$m1" "$s0" "$s1" "$w0" "$w1" \
    >"$WORK/line.json"
  cut -c1-300 "$WORK/line.json" >&2
  # another process took CPU during the run: keep the line apart and say so (the caller retries)
  if node -e 'const o = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); process.exit((o.other_cpu_cores_during_run || 0) > +process.argv[2] ? 3 : 0)' "$WORK/line.json" "$OTHER_MAX" \
     || [ "$last" = last ]; then
    cat "$WORK/line.json" >>"$OUT"; sleep 1; return 0
  fi
  cat "$WORK/line.json" >>"$OUT_DIR/discarded-$STAMP.jsonl"
  log "$tag: other processes used CPU during the run; discarded (see discarded-$STAMP.jsonl)"
  sleep 1; return 3
}

log "fd limit $(ulimit -n); results: $OUT"
for rep in $(seq 1 "$REPS"); do
  for pin in $PINS; do
    for sc in $SCENARIOS; do
      for server in $SERVERS; do
        for attempt in $(seq 1 "$ATTEMPTS"); do
          last=""; [ "$attempt" = "$ATTEMPTS" ] && last=last
          run_one "$server" "$sc" "$pin" "$rep" "$last"; rc=$?
          [ "$rc" = 3 ] || break
        done
      done
    done
  done
done

node "$HELPERS/signaling-summary.mjs" "$OUT" | tee "$OUT_DIR/summary-$STAMP.md"
log "results: $OUT; summary: $OUT_DIR/summary-$STAMP.md; logs: $LOGS"
