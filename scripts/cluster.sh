#!/usr/bin/env bash
# A whole deployment on one machine, for trying it out: a Redis (the shared queue) and a
# PostgreSQL (sessions and conversations), each in a temporary folder, two web instances on two
# ports and two device workers, all sharing one fair queue. Prints the addresses; Ctrl-C stops
# everything and removes the folders.
#
#   scripts/cluster.sh            (or `make cluster`)
#   WEB_PORTS="4000 4001" WORKERS=3 scripts/cluster.sh
#
# Uses the debug build that `make run` uses (scripts/build.sh); pass RELEASE=1 for target/release.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

web_ports=(${WEB_PORTS:-3000 3001})
workers=${WORKERS:-2}
tgt="$(realpath "${CARGO_TARGET_DIR:-target}")"
if [ "${RELEASE:-0}" = 1 ]; then
  scripts/build.sh --release
  bin="$tgt/release/turnstile"
else
  scripts/build.sh
  bin="$tgt/debug/turnstile"
fi
scripts/model.sh >/dev/null

for tool in redis-server; do
  command -v "$tool" >/dev/null || { echo "cluster: $tool is missing: run scripts/setup.sh --test"; exit 1; }
done
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$pg_bin/postgres" ] || { echo "cluster: PostgreSQL is missing: run scripts/setup.sh --test"; exit 1; }

dir="$(mktemp -d /tmp/turnstile-cluster.XXXXXX)"
pids=()
as_pg=()
stop() {
  echo
  echo "cluster: stopping"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$dir/pg/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT TERM

# Redis: a Unix socket in the folder, the append-only file on (a restart keeps the queue).
redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 --dir "$dir" \
  --appendonly yes --save "" --daemonize no >"$dir/redis.log" 2>&1 &
pids+=($!)
queue="redis+unix://$dir/redis.sock"

# PostgreSQL refuses to run as root: as root it runs as the postgres user.
mkdir -p "$dir/pg"
if [ "$(id -u)" = 0 ]; then
  chown postgres "$dir/pg"
  chmod 755 "$dir"
  as_pg=(runuser -u postgres --)
fi
"${as_pg[@]}" "$pg_bin/initdb" -D "$dir/pg/data" -U postgres --auth=trust >/dev/null
printf "listen_addresses = ''\nunix_socket_directories = '%s'\n" "$dir/pg" >>"$dir/pg/data/postgresql.conf"
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w start >/dev/null
db="postgres://postgres@localhost/postgres?host=$dir/pg"

for i in $(seq 1 "$workers"); do
  "$bin" worker --queue "$queue" --db "$db" >"$dir/worker$i.log" 2>&1 &
  pids+=($!)
done
for port in "${web_ports[@]}"; do
  "$bin" --queue "$queue" --db "$db" --addr "127.0.0.1:$port" --site-root "$tgt/site" \
    >"$dir/web$port.log" 2>&1 &
  pids+=($!)
done

echo "cluster: Redis (the shared queue)  $queue"
echo "cluster: PostgreSQL (the store)    $db"
for port in "${web_ports[@]}"; do echo "cluster: web instance             http://127.0.0.1:$port"; done
echo "cluster: $workers device workers; logs in $dir"
echo "cluster: Ctrl-C stops everything"
wait -n "${pids[@]}" || true
echo "cluster: a process stopped on its own; see the logs in $dir"
tail -n 5 "$dir"/*.log || true
