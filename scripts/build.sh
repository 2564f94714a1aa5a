#!/usr/bin/env bash
# Builds the server binary and the site (wasm + JS glue + CSS) into target/site (or
# $CARGO_TARGET_DIR/site), the same layout cargo-leptos produces, without needing cargo-leptos installed.
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
# --emit-relocs lets wasm-split-cli move the code only the lazily loaded routes use (`#[lazy_route]`:
# the chat and stats pages) into their own wasm files, fetched when such a page is first shown.
# -Zlocation-detail=none (RUSTC_BOOTSTRAP is set): no source file names and lines for panics, which
# abort without a message in the bundle anyway (about 3 KB gzipped).
cargo build -p frontend --lib --target wasm32-unknown-unknown --profile wasm-release "${WASM_BUILD_STD[@]}" \
  --config 'target.wasm32-unknown-unknown.rustflags=["-Clink-args=--emit-relocs","-Zlocation-detail=none"]'

tgt="${CARGO_TARGET_DIR:-target}"
site="$tgt/site"
split="$tgt/wasm-split"
# The lazily loaded files' names carry hashes: clear out the previous build's.
rm -rf "$site/pkg" "$split"
mkdir -p "$site/pkg"
# The main module (turnstile.wasm), one file per lazy route (split_*.wasm), code they share
# (chunk_*.wasm) and the loader the main module imports (__wasm_split.js).
wasm-split-cli --out-name turnstile "$tgt/wasm32-unknown-unknown/wasm-release/frontend.wasm" "$split"
wasm-bindgen --target web --no-typescript --keep-lld-exports --out-dir "$site/pkg" --out-name turnstile \
  "$split/turnstile.wasm"
find "$split" -maxdepth 1 \( -name 'split_*.wasm' -o -name 'chunk_*.wasm' \) -exec cp {} "$site/pkg/" \;
# The loader under the name Leptos' HydrationScripts preloads (cargo-leptos' name for it).
loader="__wasm_split.______________________.js"
cp "$split/__wasm_split.js" "$site/pkg/$loader"
# Only the JS imports change; the wasm's own import names (the keys of the imports object) stay.
sed -i "s#^\(import .* from \)\"./__wasm_split.js\"#\1\"./$loader\"#" "$site/pkg/turnstile.js"
grep -q "^import .* from \"./$loader\"" "$site/pkg/turnstile.js"
# binaryen from npm (end2end/node_modules): Debian's wasm-opt 108 silently breaks hydration.
# The producers and target-features sections are dropped: about 200 bytes in each of the files a
# page loads, which nothing reads.
for wasm in "$site"/pkg/*.wasm; do
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --strip-producers --strip-target-features "$wasm" -o "$wasm"
done
# Content-hashed names for the lazily loaded files, and the preload manifest the server reads.
node scripts/split-manifest.mjs "$site/pkg"
cp style/main.css "$site/pkg/turnstile.css"
cp -r public/. "$site/"
echo "build: ok -> $site/pkg ($(du -h "$site/pkg/turnstile_bg.wasm" | cut -f1) main wasm," \
  "$(cat "$site"/pkg/{split,chunk}_*.wasm | wc -c | numfmt --to=iec) lazily loaded)"
