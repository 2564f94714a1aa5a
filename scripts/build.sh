#!/usr/bin/env bash
# Builds the server binary and the site (wasm + JS glue + CSS) into target/site, the same layout
# cargo-leptos produces, without needing cargo-leptos installed.
#   scripts/build.sh            dev profile (what the tests use)
#   scripts/build.sh --release  release server, size-optimised wasm (what `make run` serves)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

if [ "${1:-}" = "--release" ]; then
  server_profile=release; wasm_profile=wasm-release
else
  server_profile=dev; wasm_profile=dev
fi
wasm_dir=$([ "$wasm_profile" = dev ] && echo debug || echo "$wasm_profile")

echo "build: server ($server_profile)"
cargo build -p server --bin turnstile --profile "$server_profile"

echo "build: wasm ($wasm_profile)"
cargo build -p frontend --lib --target wasm32-unknown-unknown --profile "$wasm_profile" "${WASM_BUILD_STD[@]}"

site=target/site
mkdir -p "$site/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$site/pkg" --out-name turnstile \
  "target/wasm32-unknown-unknown/$wasm_dir/frontend.wasm"
if [ "$wasm_profile" = wasm-release ]; then
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals "$site/pkg/turnstile_bg.wasm" -o "$site/pkg/turnstile_bg.wasm"
fi
cp style/main.css "$site/pkg/turnstile.css"
cp -r public/. "$site/"
echo "build: ok -> $site/pkg ($(du -h "$site/pkg/turnstile_bg.wasm" | cut -f1) wasm)"
