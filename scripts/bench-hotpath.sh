#!/usr/bin/env bash
# The scheduler's hot path against a release server (issue 12's figures; scripts/bench.sh runs it,
# docs/benchmarks.md records them):
#   1. start-up: process start to the first answered job, and the idle server's memory;
#   2. 100 WebSocket clients sending distinct 2x2 adds: jobs/s, p99, and the server's CPU time
#      and context switches (wake-ups) per job, from `perf stat` on the server process;
#   3. 10,000 waiting clients: the lag until the last hears its new position, memory per waiter;
#   4. 100 clients sending 1 ms jobs: the device's utilization.
# TURNSTILE_BIN and LOAD_BIN choose the binaries (defaults: this tree's release builds), so the
# same script measures an older build side by side. HOTPATH_DUR sets each saturate run's seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${TURNSTILE_BIN:-target/release/turnstile}"
loadbin="${LOAD_BIN:-target/release/turnstile-load}"
out="${HOTPATH_OUT:-target/bench/hotpath}"
dur="${HOTPATH_DUR:-30}"
waiters="${HOTPATH_WAITERS:-10000}"
mkdir -p "$out"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
port="${HOTPATH_PORT:-3991}"
pid=""
stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=""; rm -f "$out"/hot.sqlite3*; }
trap stop EXIT
start() {
  stop
  "$bin" --addr "127.0.0.1:$port" --test-mode --db "$out/hot.sqlite3" \
    --max-waiting 50000 --max-waiting-per-session 0 --max-run 1h --max-wait 1h \
    --rate-per-ip 0 --rate-per-session 0 --rate-per-connection 0 \
    --max-connections 0 --max-connections-per-ip 0 "$@" > "$out/server.log" 2>&1 &
  pid=$!
}
ready() { for _ in $(seq 200); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return; sleep 0.05; done; echo "server did not start"; cat "$out/server.log"; exit 1; }
load() { "$loadbin" --addr "127.0.0.1:$port" "$@"; }
job='{"op":"add","a":{"shape":[2,2],"data":[1,2,3,4]},"b":{"shape":[2,2],"data":[5,6,7,8]}}'

echo "hotpath: $bin"
echo "hotpath: start-up (five starts: process start to the first answered job)"
for i in 1 2 3 4 5; do
  t0=$(date +%s%N)
  start
  until curl -fs -o /dev/null -H 'content-type: application/json' -d "$job" "http://127.0.0.1:$port/api/execute" 2>/dev/null; do :; done
  t1=$(date +%s%N)
  sleep 1
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  echo "startup_ms=$(( (t1 - t0) / 1000000 )) idle_rss_kib=$rss" | tee -a "$out/startup.txt"
done

echo "hotpath: 100 WebSocket clients, distinct 2x2 adds, $dur s (perf stat on the server)"
start; ready
perf stat -e task-clock,context-switches,cpu-migrations -p "$pid" -o "$out/perf-add.txt" &
perf_pid=$!
sleep 0.2
load --json "$out/add-ws-100.json" saturate --clients 100 --transport ws --job add --jobs-per-client 10000000 --duration "$dur"
kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
python3 - "$out/add-ws-100.json" "$out/perf-add.txt" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
perf = open(sys.argv[2]).read()
def num(name):
    m = re.search(r"([\d.,]+)\s+(?:msec\s+)?" + name, perf)
    return float(m.group(1).replace(",", "")) if m else float("nan")
jobs = r["completed"]
print(f"jobs/s {r['jobs_per_second']:.0f}  p50 {r['latency']['p50_us'] / 1000:.2f} ms  p99 {r['latency']['p99_us'] / 1000:.2f} ms  completed {jobs}")
print(f"server CPU per job {num('task-clock') * 1000 / jobs:.1f} us  context switches per job {num('context-switches') / jobs:.2f}")
PY

echo "hotpath: $waiters waiting clients (position lag, memory per waiter)"
start; ready
load --json "$out/hold-$waiters.json" hold --waiters "$waiters" --rounds 20 --timeout 600

echo "hotpath: 100 clients, 1 ms jobs, $dur s (device utilization)"
start; ready
load --json "$out/sleep1ms-100.json" saturate --clients 100 --transport ws --job sleep --sleep-us 1000 --jobs-per-client 10000000 --duration "$dur"
stop
