# Sourced by the benchmark scripts after `set -uo pipefail`: `bench_prelude NAME` (with $OUT_DIR
# set) takes $OUT_DIR/.lock — one benchmark at a time: two would spoil each other's figures —
# sets $STAMP, $OUT (results-$STAMP.jsonl) and $LOGS (logs-$STAMP/, created), makes a private
# work directory ($WORK, removed on exit, with the server $SPID the script started stopped
# first), raises the open-file limit to the hard one, and defines `log`.
bench_prelude() {
  BENCH_NAME=$1
  mkdir -p "$OUT_DIR"
  OUT_DIR=$(cd "$OUT_DIR" && pwd)
  exec 9>"$OUT_DIR/.lock"
  flock -n 9 || { echo "[$BENCH_NAME] another run holds $OUT_DIR/.lock; not starting" >&2; exit 1; }
  STAMP=$(date -u +%Y%m%dT%H%M%SZ)
  OUT=$OUT_DIR/results-$STAMP.jsonl
  LOGS=$OUT_DIR/logs-$STAMP
  mkdir -p "$LOGS"
  WORK=$(mktemp -d "/tmp/$BENCH_NAME.XXXXXX")
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  SPID=""
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then kill "$SPID"; wait "$SPID" 2>/dev/null; fi
  rm -rf "$WORK"
}

log() { echo "[$BENCH_NAME] $*" >&2; }

# Busy CPU ticks of the whole machine (USER_HZ). irq and softirq count: this kernel charges
# softirq work done in a process's context to that process too, so leaving them out made
# "other processes' CPU" negative under loopback load.
cpu_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat; }

# Other work spoils the figures (a 2-core box): waits (up to $QUIET_WAIT_S) until the machine
# uses less than $QUIET_MAX_CORES over 2 s; sets QUIET_BUSY (cores).
wait_quiet() {
  local deadline=$((SECONDS + QUIET_WAIT_S)) a b warned=""
  while :; do
    a=$(cpu_ticks); sleep 2; b=$(cpu_ticks)
    QUIET_BUSY=$(awk -v d=$((b - a)) 'BEGIN { printf "%.2f", d / 100 / 2 }')
    awk -v x="$QUIET_BUSY" -v m="$QUIET_MAX_CORES" 'BEGIN { exit !(x < m) }' && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then log "machine still busy ($QUIET_BUSY cores); running anyway"; return 0; fi
    [ -z "$warned" ] && { log "machine busy ($QUIET_BUSY cores used by other processes); waiting"; warned=1; }
  done
}
