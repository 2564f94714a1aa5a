#!/usr/bin/env bash
# `make fuzz`: runs each cargo-fuzz target under fuzz/ for a while and prints what each did.
#
#   FUZZ_SECONDS=300 make fuzz                  # seconds per target (default 60)
#   FUZZ_TARGETS="markdown" make fuzz           # some targets only (default: all three)
#   FUZZ_SANITIZER=none make fuzz               # without AddressSanitizer (default: address)
#
# The fuzz build needs nightly features: RUSTC_BOOTSTRAP=1 (from scripts/env.sh) lets the stable
# toolchain take cargo-fuzz's -Z flags. The first build compiles the wire types (`app`, no
# Leptos), the calculator (`turnstile-calc`) and candle with sanitizer instrumentation into
# fuzz/target (not the server): expect a wait on two cores.
# Each target's full libFuzzer output goes to fuzz/logs/<target>.log; new corpus entries go to
# fuzz/corpus/<target>/ (ignored by git: only the seeds are committed), crashes to
# fuzz/artifacts/<target>/. See docs/reliability.md, "Fuzzing", for how to minimise a crash.
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-client_message calc_input markdown}"
sanitizer="${FUZZ_SANITIZER:-address}"
# Many codegen units: the sanitized release build of candle and the calculator is much quicker on
# two cores, and every run reuses the same build (cargo-fuzz's default, 1, would rebuild).
build_args=(--sanitizer "$sanitizer" --codegen-units 16)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked || cargo install cargo-fuzz || exit 1
fi

mkdir -p fuzz/logs
echo "building the fuzz targets (sanitizer: $sanitizer)"
if ! cargo fuzz build "${build_args[@]}" >fuzz/logs/build.log 2>&1; then
  tail -n 30 fuzz/logs/build.log
  echo "fuzz build failed; full log in fuzz/logs/build.log" >&2
  exit 1
fi

fuzz_stat() { grep -o "stat::$1: *[0-9]*" "$2" | tail -n 1 | grep -o '[0-9]*$' || echo '?'; }

failed=()
summary=()
for t in $targets; do
  log="fuzz/logs/$t.log"
  echo "fuzzing $t for ${seconds}s (log: $log)"
  cargo fuzz run "${build_args[@]}" "$t" -- \
    -max_total_time="$seconds" \
    -dict="$ROOT/fuzz/dicts/$t.dict" \
    -timeout=20 \
    -print_final_stats=1 >"$log" 2>&1
  rc=$?
  execs="$(fuzz_stat number_of_executed_units "$log")"
  per_sec="$(fuzz_stat average_exec_per_sec "$log")"
  corpus="$(find "fuzz/corpus/$t" -type f | wc -l)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || echo '?')"
  line="$(printf '%-16s %14s execs %8s/s  corpus %6s  cov %6s' "$t" "$execs" "$per_sec" "$corpus" "$cov")"
  if [ "$rc" -ne 0 ]; then
    line="$line  FAILED (rc $rc; see $log and fuzz/artifacts/$t/)"
    failed+=("$t")
    grep -E "panicked at|ERROR: libFuzzer|SUMMARY|Test unit written" "$log" | head -n 10
  fi
  summary+=("$line")
  echo "$line"
done

echo
echo "fuzzing summary (${seconds}s per target):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashes in: ${failed[*]}; minimise with" >&2
  echo "  cargo fuzz tmin ${build_args[*]} <target> fuzz/artifacts/<target>/<crash-file>" >&2
  exit 1
fi
