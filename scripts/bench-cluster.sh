#!/usr/bin/env bash
# Issue 14's figures: turnstile-load against a deployment on this machine (docs/benchmarks.md,
# "Many machines, one queue"). Everything runs on loopback: a redis-server on a Unix socket, web
# instances and workers as separate processes of the release build.
#   1. 5 ms jobs, 16 WebSocket clients: jobs/s of one process, of one web instance with one
#      worker, and with two workers (target: two workers >= 1.9x one), and Redis commands per job;
#   2. one client, 2x2 adds back to back: the latency a job pays for the shared queue (p50, p99)
#      against one process;
#   3. 10,000 waiters spread over three web instances: the lag until the last hears its new
#      position when the job at the front ends.
# CLUSTER_DUR sets each saturate run's seconds (default 20); CLUSTER_WAITERS the waiters.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release -q -p server -p turnstile-load
bin=target/release/turnstile
loadbin=target/release/turnstile-load
out="${CLUSTER_OUT:-target/bench/cluster}"
dur="${CLUSTER_DUR:-20}"
waiters="${CLUSTER_WAITERS:-10000}"
mkdir -p "$out"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
dir="$(mktemp -d /tmp/turnstile-bench-cluster.XXXXXX)"
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
}
trap 'stop_all; rm -rf "$dir"' EXIT
common=(--test-mode --max-waiting 50000 --max-waiting-per-session 0 --max-run 1h --max-wait 1h
  --rate-per-ip 0 --rate-per-session 0 --rate-per-connection 0 --max-connections 0
  --max-connections-per-ip 0)
ready() { for _ in $(seq 400); do curl -fs "http://$1/health" >/dev/null 2>&1 && return; sleep 0.05; done; echo "$1 did not start"; exit 1; }
redis() { redis-cli -s "$dir/redis.sock" "$@"; }
# start_cluster WEBS WORKERS: a fresh Redis, WEBS web instances (ports 3971..), WORKERS workers.
start_cluster() {
  stop_all
  rm -f "$dir"/*.aof "$dir"/appendonly* 2>/dev/null || true
  redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 --dir "$dir" \
    --save "" --appendonly no >"$dir/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -S "$dir/redis.sock" ] && break; sleep 0.05; done
  local q="redis+unix://$dir/redis.sock" addrs=()
  for w in $(seq 1 "$2"); do
    "$bin" worker "${common[@]}" --queue "$q" --db "$dir/worker$w.sqlite3" >"$out/worker$w.log" 2>&1 &
    pids+=($!)
  done
  for i in $(seq 1 "$1"); do
    local port=$((3970 + i))
    "$bin" "${common[@]}" --queue "$q" --addr "127.0.0.1:$port" --db "$dir/web$i.sqlite3" >"$out/web$i.log" 2>&1 &
    pids+=($!)
    addrs+=("127.0.0.1:$port")
  done
  for a in "${addrs[@]}"; do ready "$a"; done
  addr="$(IFS=,; echo "${addrs[*]}")"
  sleep 0.5
}
start_single() {
  stop_all
  "$bin" "${common[@]}" --addr 127.0.0.1:3970 --db "$dir/single.sqlite3" >"$out/single.log" 2>&1 &
  pids+=($!)
  ready 127.0.0.1:3970
  addr=127.0.0.1:3970
}
saturate() { "$loadbin" --addr "$addr" --json "$out/$1.json" saturate "${@:2}" >"$out/$1.txt"; }
field() { python3 -c "import json,sys; r=json.load(open('$out/$1.json')); print($2)"; }

echo "cluster: 1. 5 ms jobs, 16 clients, $dur s"
start_single
saturate sleep-single --clients 16 --job sleep --sleep-us 5000 --jobs-per-client 1000000 --duration "$dur"
single=$(field sleep-single "round(r['jobs_per_second'],1)")
echo "one process:           $single jobs/s"
for w in 1 2; do
  start_cluster 1 "$w"
  redis CONFIG RESETSTAT >/dev/null
  saturate "sleep-workers$w" --clients 16 --job sleep --sleep-us 5000 --jobs-per-client 1000000 --duration "$dur"
  redis INFO commandstats > "$out/commandstats-workers$w.txt"
  jobs=$(field "sleep-workers$w" "r['completed']")
  rate=$(field "sleep-workers$w" "round(r['jobs_per_second'],1)")
  # Calls a client made (a script, a stream read) against the commands Redis ran for them (a
  # script's own commands included), per completed job; the workers' idle polls count too.
  per_job=$(python3 - "$out/commandstats-workers$w.txt" "$jobs" <<'PY'
import re, sys
calls = {m[0]: int(m[1]) for m in re.findall(r"cmdstat_(\w+):calls=(\d+)", open(sys.argv[1]).read())}
jobs = max(int(sys.argv[2]), 1)
client = sum(calls.get(c, 0) for c in ("evalsha", "eval", "xread", "xrange", "xrevrange", "script", "ping", "hello", "client", "select"))
scripts = calls.get("evalsha", 0) + calls.get("eval", 0)
total = sum(calls.values())
print(f"{client/jobs:.1f} calls per job ({scripts/jobs:.1f} of them scripts), {total/jobs:.1f} commands run in Redis per job")
PY
)
  echo "web + $w worker(s):     $rate jobs/s; $per_job"
  eval "rate$w=$rate"
done
echo "two workers / one:     $(python3 -c "print(round($rate2/$rate1,2))")x (target >= 1.9x)"

echo "cluster: 2. one client, 2x2 adds back to back, $dur s"
start_single
saturate add-single --clients 1 --job add --jobs-per-client 100000000 --duration "$dur"
echo "one process:           p50 $(field add-single "r['latency']['p50_us']") us, p99 $(field add-single "r['latency']['p99_us']") us"
start_cluster 1 1
saturate add-cluster --clients 1 --job add --jobs-per-client 100000000 --duration "$dur"
echo "web + worker (Redis):  p50 $(field add-cluster "r['latency']['p50_us']") us, p99 $(field add-cluster "r['latency']['p99_us']") us"

echo "cluster: 3. $waiters waiters over three web instances"
start_cluster 3 1
"$loadbin" --addr "$addr" --json "$out/hold.json" hold --waiters "$waiters" --rounds 10 >"$out/hold.txt"
echo "position lag:          p50 $(field hold "r['lag']['p50_us']//1000") ms, p99 $(field hold "r['lag']['p99_us']//1000") ms, max $(field hold "r['lag']['max_us']//1000") ms over $(field hold "r['waiters_queued']") waiters"
echo "cluster: reports in $out"
