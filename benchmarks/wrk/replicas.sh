#!/usr/bin/env bash
# Load through two replicas on one PostgreSQL, all on this machine: a throwaway PostgreSQL (initdb in a temp
# folder, as the `postgres` user when run as root), two `scripts/serve.sh` on PORT_A and PORT_B (same bundle,
# same database), wrk with benchmarks/wrk/replicas.lua (the 80/20 mix of mix.lua, threads split over the two)
# for a warm-up (10 s) then DURATION (30 s); everything it started is stopped on exit. Loopback only, bounded in time.
#   python benchmarks/full_size_bundle.py --out /tmp/fullbundle
#   python benchmarks/wrk/requests.py --bundle /tmp/fullbundle --out /tmp/wrk-requests.txt
#   BUNDLE=/tmp/fullbundle REQUESTS=/tmp/wrk-requests.txt bash benchmarks/wrk/replicas.sh
# Settings (environment): BUNDLE, REQUESTS, PORT_A/PORT_B (8741/8742), PG_PORT (8743), WORKERS per replica (1),
# CONNECTIONS (16), WARMUP (10s), DURATION (30s), POOL (RECSYS_EVENTS_POOL_SIZE, 4).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=${BUNDLE:-/tmp/fullbundle}; REQUESTS=${REQUESTS:-/tmp/wrk-requests.txt}
PORT_A=${PORT_A:-8741}; PORT_B=${PORT_B:-8742}; PG_PORT=${PG_PORT:-8743}
WORKERS=${WORKERS:-1}; CONNECTIONS=${CONNECTIONS:-16}; WARMUP=${WARMUP:-10s}; DURATION=${DURATION:-30s}; POOL=${POOL:-4}
PG_BIN=$(dirname "$(readlink -f "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")")
WORK=$(mktemp -d /tmp/replicas-bench-XXXXXX)
AS_PG=(); [ "$(id -u)" = 0 ] && { chown postgres: "$WORK"; AS_PG=(runuser -u postgres --); }
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" stop -m fast -D "$WORK/data" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
"${AS_PG[@]}" "$PG_BIN/initdb" -D "$WORK/data" -U postgres -A trust -E UTF8 >/dev/null
"${AS_PG[@]}" "$PG_BIN/pg_ctl" start -w -D "$WORK/data" -l "$WORK/postgres.log" \
  -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$WORK" >/dev/null
"${AS_PG[@]}" "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres recsys
export RECSYS_BUNDLE_DIR=$BUNDLE RECSYS_EVENTS_URL=postgresql://postgres@127.0.0.1:$PG_PORT/recsys
export RECSYS_WORKERS=$WORKERS RECSYS_EVENTS_POOL_SIZE=$POOL
for port in "$PORT_A" "$PORT_B"; do
  RECSYS_PORT=$port bash scripts/serve.sh >"$WORK/replica-$port.log" 2>&1 &
  PIDS+=($!)
done
for port in "$PORT_A" "$PORT_B"; do
  for _ in $(seq 120); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.5; done
  curl -sf "http://127.0.0.1:$port/ready" >/dev/null || { echo "replica $port not ready"; tail "$WORK/replica-$port.log"; exit 1; }
done
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(uptime)"
export WRK_TARGETS=127.0.0.1:$PORT_A,127.0.0.1:$PORT_B
wrk -t2 -c"$CONNECTIONS" -d"$WARMUP" -s benchmarks/wrk/replicas.lua "http://127.0.0.1:$PORT_A" -- "$REQUESTS" >/dev/null
# CPU over the measured run: every process of each replica and of PostgreSQL (cpu_snapshot.py), wrk's own
# (bash's `time`), and the machine's busy CPU (anything else running on the box shows there)
CPU_GROUPS=(replica_a="${PIDS[0]}" replica_b="${PIDS[1]}" postgres="$(head -1 "$WORK/data/postmaster.pid")")
before=$(python benchmarks/wrk/cpu_snapshot.py "${CPU_GROUPS[@]}")
TIMEFORMAT='wrk CPU: %U s user + %S s system'
time wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s benchmarks/wrk/replicas.lua "http://127.0.0.1:$PORT_A" -- "$REQUESTS" \
  | tee "$WORK/wrk.txt"
after=$(python benchmarks/wrk/cpu_snapshot.py "${CPU_GROUPS[@]}")
requests=$(awk '/requests in/ { print $1 }' "$WORK/wrk.txt")
python benchmarks/wrk/cpu_snapshot.py --per-request "$requests" "$before" "$after"
for port in "$PORT_A" "$PORT_B"; do
  curl -s "http://127.0.0.1:$port/metrics" | awk -v port="$port" '/^recsys_http_requests_total/ {
    split($0, a, "status=\""); status = substr(a[2], 1, 1) "xx"; count[status] += $NF }
    END { printf "replica %s answered:", port; for (s in count) printf " %s %d", s, count[s]; print "" }'
done
echo "after: $(uptime)"
