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
