# Sourced by the benchmark scripts after `set -uo pipefail`: `bench_prelude NAME` makes a
# private work directory ($WORK, removed on exit, with the server $SPID the script started
# stopped first), raises the open-file limit to the hard one, and defines `log`.
bench_prelude() {
  BENCH_NAME=$1
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
