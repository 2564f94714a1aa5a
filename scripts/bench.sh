#!/usr/bin/env bash
# Runs every benchmark and prints its figures (docs/benchmarks.md records them):
#   1. the scheduler's micro-benchmarks (criterion) and its hot path (scripts/bench-hotpath.sh),
#   2. turnstile-load's scenarios against a release server started here on 127.0.0.1 (the
#      ageing one three times on one fresh server: a million jobs each, about five minutes),
#   3. the page's bundle size and navigation-to-hydrated time in Chromium.
# JSON reports go to target/bench/. Release builds (the first one takes a while on 2 cores).
# BENCH_QUICK=1 runs shorter versions (for trying the script out, not for the record).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
out=target/bench
mkdir -p "$out"
quick="${BENCH_QUICK:-0}"
dur=30; hold_big=10000; jobs=100000; age_jobs=1000000
[ "$quick" = 1 ] && { dur=5; hold_big=1000; jobs=2000; age_jobs=20000; }
echo "bench: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"

echo "bench: building (release)"
cargo build --release -p server --bin turnstile
cargo build --release -p turnstile-load

echo "bench: scheduler micro-benchmarks (criterion)"
cargo bench -p turnstile-scheduler --bench scheduler 2>&1 | grep -E "^scheduler/|time:" | paste - - | sed 's/  */ /g' | tee "$out/scheduler.txt"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
port=3990
server_pid=""
start() { # start <extra server flags...>
  stop
  ./target/release/turnstile --addr "127.0.0.1:$port" --test-mode --db "$out/bench.sqlite3" \
    --max-waiting 50000 --max-waiting-per-session 0 --max-run 1h --max-wait 1h \
    --rate-per-ip 0 --rate-per-session 0 --rate-per-connection 0 \
    --max-connections 0 --max-connections-per-ip 0 "$@" > "$out/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "bench: the server did not start"; cat "$out/server.log"; exit 1
}
stop() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; server_pid=""; rm -f "$out"/bench.sqlite3*; }
trap stop EXIT
load() { ./target/release/turnstile-load --addr "127.0.0.1:$port" "$@"; }

echo "bench: the scheduler's hot path (start-up, 2x2 adds with perf stat, 10,000 waiters, 1 ms jobs)"
HOTPATH_DUR="$dur" HOTPATH_WAITERS="$hold_big" HOTPATH_OUT="$out/hotpath" scripts/bench-hotpath.sh

echo "bench: device utilization and throughput (saturate)"
start
load --json "$out/saturate-sleep1ms-100.json" saturate --clients 100 --transport ws --job sleep --sleep-us 1000 --jobs-per-client 100000 --duration "$dur"
load --json "$out/saturate-sleep100us-100.json" saturate --clients 100 --transport ws --job sleep --sleep-us 100 --jobs-per-client 100000 --duration "$dur"
for c in 1 10 100 1000; do
  load --json "$out/saturate-add-ws-$c.json" saturate --clients "$c" --transport ws --job add --jobs-per-client 1000000 --duration "$dur"
  load --json "$out/saturate-add-http-$c.json" saturate --clients "$c" --transport http --job add --jobs-per-client 1000000 --duration "$dur"
done

echo "bench: idle waiters (hold)"
for n in 1000 "$hold_big"; do
  start
  load --json "$out/hold-$n.json" hold --waiters "$n" --rounds 20 --timeout 600
done

echo "bench: one session floods the queue (fair, then FIFO)"
for order in fair fifo; do
  start --queue-order "$order"
  load --json "$out/flood-$order.json" flood --flood-jobs 200 --light 9 --job-ms 20
done

echo "bench: the chat engine's kernel and forward pass alone (turnstile-llm)"
cargo run --quiet --release -p turnstile-llm --example kernel -- --threads 1 | tee "$out/llm-kernel.txt"
for t in 1 2; do
  cargo run --quiet --release -p turnstile-llm --example decode -- \
    --batch 1,2,4,8,16 --prompt-tokens 40 --tokens 128 --threads "$t" --candle | tee "$out/llm-decode-t$t.txt"
done

echo "bench: chat on the embedded model (continuous batching)"
prompt="Write a long essay about the history of computing."
for threads in 1 2; do
  start --preload-model --device-threads "$threads"
  load --json "$out/chat-1-t$threads.json" chat --clients 1 --max-tokens 128 --prompt "$prompt"
  # Eight chats streaming; each client sends three in a row, so later chats arrive while seven
  # others stream; a calculator probe every 200 ms measures the device's other users.
  load --json "$out/chat-8-t$threads.json" chat --clients 8 --rounds 3 --max-tokens 128 \
    --prompt "$prompt" --calc-every-ms 200 --timeout 600
done
# More chats than lanes: the waits, and how far the promised ETAs were from them.
start --preload-model
load --json "$out/chat-16.json" chat --clients 16 --rounds 2 --stagger-ms 250 --max-tokens 96 \
  --prompt "$prompt" --timeout 600

echo "bench: llama.cpp on the same file and threads (the anchor; built once, not in CI)"
scripts/anchor-llamacpp.sh | tee "$out/anchor-llamacpp.txt"

echo "bench: ageing (three runs of a million distinct 2x2 adds on one fresh server)"
start
for run in 1 2 3; do
  load --json "$out/age-$run.json" age --jobs "$age_jobs" --clients 100 --duration 3600
done

echo "bench: soak (three runs on one server: the first sets its memory's high-water mark)"
start --resume-window 15s
for r in 1 2 3; do
  load --json "$out/soak-$r.json" soak --clients 1000 --jobs "$jobs" --chat-share 0.002 --duration 600 --linger 20
done
stop

echo "bench: the page (bundle size, navigation to hydrated)"
scripts/build.sh --release >/dev/null
tgt="$(realpath "${CARGO_TARGET_DIR:-target}")"
(cd end2end && TURNSTILE_BIN="$tgt/release/turnstile" TURNSTILE_SITE_ROOT="$tgt/site" \
  BENCH_JSON="$PWD/../$out/hydration.json" npx playwright test -c playwright.bench.config.ts)
echo "bench: done; JSON reports in $out/"
