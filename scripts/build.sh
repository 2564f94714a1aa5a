#!/usr/bin/env bash
# Builds the server binary and the site (wasm + JS glue + CSS) into target/site, the same layout
# cargo-leptos produces, without needing cargo-leptos installed.
#   scripts/build.sh            server in the dev profile (dependencies optimised; what `make run`
#                               and the tests use), size-optimised wasm
#   scripts/build.sh --release  server in the release profile (for benchmarks and deployment)
# The wasm bundle is always the optimised one (wasm-release + wasm-opt), so the browser tests run
# exactly what users download.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

server_profile=dev
[ "${1:-}" = "--release" ] && server_profile=release

echo "build: server ($server_profile)"
cargo build -p server --bin turnstile --profile "$server_profile"

echo "build: wasm (wasm-release)"
cargo build -p frontend --lib --target wasm32-unknown-unknown --profile wasm-release "${WASM_BUILD_STD[@]}"

site=target/site
mkdir -p "$site/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$site/pkg" --out-name turnstile \
  target/wasm32-unknown-unknown/wasm-release/frontend.wasm
# binaryen from npm (end2end/node_modules): Debian's wasm-opt 108 silently breaks hydration.
wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals "$site/pkg/turnstile_bg.wasm" -o "$site/pkg/turnstile_bg.wasm"
cp style/main.css "$site/pkg/turnstile.css"
cp -r public/. "$site/"
echo "build: ok -> $site/pkg ($(du -h "$site/pkg/turnstile_bg.wasm" | cut -f1) wasm)"
