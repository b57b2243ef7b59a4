#!/usr/bin/env bash
# Embedded TURN vs coturn, side by side on this machine (issue 4; the recipe of
# ../shared/bench/turn/README.md). Both servers face the same load client, coturn's own
# turnutils_uclient, relaying to one turnutils_peer on 127.0.0.1; the runs alternate between the
# servers so that drift on the machine hits both.
#
#   scripts/bench-turn.sh                # 3 rounds of every profile
#   RUNS=5 PROFILES="udp" scripts/bench-turn.sh
#
# Profiles (PROCS client processes × M sessions, N messages of L bytes, Z ms apart):
#   udp      2 × 50 sessions, 1000 B every 2 ms over UDP (the baseline's headline load)
#   udp-z1   the same every 1 ms: past what the load generator sustains; shows saturation
#   tcp      1 × 50 sessions, 1000 B every 2 ms, clients reaching TURN over TCP
#
# Per run: round trips per second (messages that came back / wall time of the load), loss,
# server CPU (utime+stime from /proc) per relayed packet (two per round trip), and the
# server's peak resident memory. Needs coturn (turnserver, turnutils_*) and a release build.
# Results: target/bench-turn/<UTC time>/ (runs.jsonl, summary.md, logs).
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
PROFILES=${PROFILES:-"udp udp-z1 tcp"}
N=${N:-1000}
PORT=${PORT:-3478}
PEER_PORT=${PEER_PORT:-3480}
SECRET=bench-secret-0123456789abcdef
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=target/bench-turn/$stamp
mkdir -p "$out"

for tool in turnserver turnutils_uclient turnutils_peer turnutils_stunclient python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install coturn python3)" >&2; exit 2; }
done

echo "building the release binary…" >&2
cargo build --release -q -p securevox
cp target/release/securevox "$out/securevox"
{
  echo "commit: $(git rev-parse HEAD)$(git diff --quiet || echo ' (with local changes)')"
  echo "coturn: $(turnserver --version 2>&1 | head -1)"
  echo "machine: $(nproc) cores, $(uname -r)"
} > "$out/provenance.txt"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

turnutils_peer -L 127.0.0.1 -p "$PEER_PORT" >/dev/null 2>&1 &
pids+=($!)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

wait_ready() {
  for _ in $(seq 100); do
    if timeout 1 turnutils_stunclient -p "$PORT" 127.0.0.1 >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "server did not answer STUN on $PORT" >&2
  return 1
}

# Until nothing holds the TURN port (a stopped server may take a moment to let go of it, and
# a client must never reach the previous run's server).
wait_port_free() {
  for _ in $(seq 100); do
    if python3 -c "
import socket, sys
for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('127.0.0.1', $PORT))
    s.close()
" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "port $PORT stays busy" >&2
  return 1
}

start_server() { # $1 = coturn | securevox; sets SERVER_PID
  wait_port_free
  case $1 in
    coturn)
      turnserver -n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port="$PORT" \
        --use-auth-secret --static-auth-secret="$SECRET" --realm=bench --no-tls --no-dtls \
        --no-cli --allow-loopback-peers --fingerprint --min-port=50000 --max-port=59999 \
        --log-file=/dev/null --no-stdout-log >/dev/null 2>&1 &
      ;;
    securevox)
      rm -rf "$out/data"
      # Caps off (0), as coturn runs without them: the same work on both sides.
      SECUREVOX_LOG_LEVEL=warn SECUREVOX_LISTEN=127.0.0.1:0 \
        SECUREVOX_TURN_PORT="$PORT" SECUREVOX_TURN_LISTEN=127.0.0.1 \
        SECUREVOX_TURN_SECRET="$SECRET" SECUREVOX_TURN_REALM=bench \
        SECUREVOX_TURN_ALLOW_LOOPBACK_PEERS=true SECUREVOX_TURN_MIN_PORT=50000 \
        SECUREVOX_TURN_MAX_PORT=59999 SECUREVOX_TURN_USER_QUOTA=0 \
        SECUREVOX_TURN_TOTAL_QUOTA=0 SECUREVOX_TURN_MAX_BPS=0 \
        "$out/securevox" serve --data-dir "$out/data" >"$out/securevox.log" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  wait_ready
  kill -0 "$SERVER_PID" || { echo "$1 exited at start" >&2; exit 1; }
}

run_load() { # $1 = server, $2 = profile, $3 = round
  local server=$1 profile=$2 round=$3 procs m z flags=""
  case $profile in
    udp) procs=2 m=50 z=2 ;;
    udp-z1) procs=2 m=50 z=1 ;;
    tcp) procs=1 m=50 z=2 flags="-t" ;;
    *) echo "unknown profile $profile" >&2; exit 2 ;;
  esac
  start_server "$server"
  local c0 t0 t1 c1 logs=()
  c0=$(cpu_ticks "$SERVER_PID")
  t0=$(date +%s.%N)
  local load=()
  for i in $(seq "$procs"); do
    local log="$out/$profile-$round-$server-$i.log"
    logs+=("$log")
    # shellcheck disable=SC2086 # flags is a word list
    timeout 300 turnutils_uclient $flags -W "$SECRET" -u "user$i" -e 127.0.0.1 -r "$PEER_PORT" \
      -n "$N" -m "$m" -l 1000 -z "$z" -X -c 127.0.0.1 -p "$PORT" >"$log" 2>&1 &
    load+=($!)
  done
  wait "${load[@]}" || true
  t1=$(date +%s.%N)
  c1=$(cpu_ticks "$SERVER_PID")
  local peak
  peak=$(peak_kb "$SERVER_PID")
  kill "$SERVER_PID"
  while kill -0 "$SERVER_PID" 2>/dev/null; do sleep 0.1; done
  wait "$SERVER_PID" 2>/dev/null || true
  python3 - "$server" "$profile" "$round" "$t0" "$t1" "$((c1 - c0))" "$(getconf CLK_TCK)" "$peak" "${logs[@]}" >>"$out/runs.jsonl" <<'PY'
import json, re, sys
server, profile, rnd, t0, t1, ticks, hz, peak, *logs = sys.argv[1:]
sent = received = 0
lost = []
transmit = 0
for path in logs:
    text = open(path, errors="replace").read()
    m = re.search(r"Total transmit time is (\d+)", text)
    transmit = max(transmit, int(m.group(1)) if m else 0)
    tallies = re.findall(r"start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", text)
    if tallies:
        sent += int(tallies[-1][0]); received += int(tallies[-1][1])
    m = re.search(r"Total lost packets (\d+) \(([\d.]+)%\)", text)
    lost.append(float(m.group(2)) if m else 100.0)
wall = float(t1) - float(t0)
cpu = int(ticks) / int(hz)
print(json.dumps({
    "server": server, "profile": profile, "round": int(rnd),
    "sent": sent, "received": received, "wall_s": round(wall, 2),
    "round_trips_per_s": round(received / wall, 1) if wall else 0,
    # uclient's own send phase (whole seconds): the rate once every session is set up.
    "transmit_s": transmit,
    "round_trips_per_s_transmit": round(received / transmit, 1) if transmit else None,
    "loss_percent": round(max(lost), 3),
    "cpu_s": cpu,
    "cpu_us_per_packet": round(cpu * 1e6 / (2 * received), 2) if received else None,
    "peak_rss_mb": round(int(peak) / 1024, 1),
}))
PY
  tail -1 "$out/runs.jsonl" >&2
}

for round in $(seq "$RUNS"); do
  for profile in $PROFILES; do
    # Alternate which server goes first.
    if (( round % 2 )); then order="coturn securevox"; else order="securevox coturn"; fi
    for server in $order; do run_load "$server" "$profile" "$round"; done
  done
done

python3 - "$out/runs.jsonl" >"$out/summary.md" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
profiles = sorted({r["profile"] for r in runs}, key=["udp", "udp-z1", "tcp"].index)
med = lambda xs: statistics.median(xs) if xs else float("nan")
print("| profile | server | round trips/s (whole run) | round trips/s (send phase) | loss % (worst) | µs CPU / relayed packet | peak RSS MB |")
print("|---|---|---|---|---|---|---|")
ratios = []
for p in profiles:
    row = {}
    for s in ["coturn", "securevox"]:
        rs = [r for r in runs if r["profile"] == p and r["server"] == s]
        row[s] = dict(
            rt=med([r["round_trips_per_s"] for r in rs]),
            rtx=med([r["round_trips_per_s_transmit"] or 0 for r in rs]),
            loss=max(r["loss_percent"] for r in rs),
            cpu=med([r["cpu_us_per_packet"] for r in rs if r["cpu_us_per_packet"]]),
            rss=med([r["peak_rss_mb"] for r in rs]),
            n=len(rs),
        )
        v = row[s]
        print(f"| {p} | {s} (n={v['n']}) | {v['rt']:.0f} | {v['rtx']:.0f} | {v['loss']:.3f} | {v['cpu']:.2f} | {v['rss']:.1f} |")
    c, o = row["coturn"], row["securevox"]
    ratios.append(f"| {p} | {o['rt']/c['rt']:.2f}× | {o['cpu']/c['cpu']:.2f}× | {o['rss']/c['rss']:.2f}× |")
print()
print("| profile | throughput ours/coturn | CPU per packet ours/coturn | peak RSS ours/coturn |")
print("|---|---|---|---|")
print("\n".join(ratios))
print()
print("Medians over rounds. CPU covers the whole run, session set-up (authentication, allocation, permissions, channels) included, as the baseline measured it. securevox's RSS is the whole server (HTTP, Socket.IO, database pool), not only TURN.")
PY
cat "$out/summary.md"
echo "results in $out" >&2
