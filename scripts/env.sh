# Sourced by the other scripts: picks the Rust toolchain and the wasm build route.
#
# Where rustup has the wasm32-unknown-unknown target, the normal route is used. Where it cannot be
# installed (machines without access to rustup's servers), Debian's rustc-web/cargo-web 1.96 in
# /usr/bin is used and the wasm side builds std from source (RUSTC_BOOTSTRAP=1, -Zbuild-std).
# The choice is remembered in target/.wasm-route so later runs are quick.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUTE_FILE="$ROOT/target/.wasm-route"
export CARGO_TERM_PROGRESS_WHEN=never

wasm_target_installed() {
  command -v rustup >/dev/null 2>&1 &&
    rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown
}

route="$(cat "$ROUTE_FILE" 2>/dev/null || true)"
if [ -z "$route" ]; then
  if wasm_target_installed; then
    route=rustup
  elif [ -x /usr/bin/cargo ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
    route=debian
  else
    route=unknown
  fi
fi

# With the standard library's sources (always on the Debian route; rustup's rust-src component
# otherwise), std is rebuilt for the bundle, size-optimised, with panics that abort at once.
WASM_BUILD_STD=()
if [ "$route" = debian ]; then
  export PATH="/usr/bin:$PATH"
  WASM_BUILD_STD=(-Zbuild-std=std,panic_abort)
elif command -v rustup >/dev/null 2>&1 &&
     rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
  WASM_BUILD_STD=(-Zbuild-std=std,panic_abort)
fi
if [ ${#WASM_BUILD_STD[@]} -gt 0 ]; then
  WASM_BUILD_STD+=(--config 'target.wasm32-unknown-unknown.rustflags=["-Zunstable-options","-Cpanic=immediate-abort"]')
fi
export RUSTC_BOOTSTRAP=1
# Tools installed by `cargo install` and npm (wasm-opt from binaryen) come first.
export PATH="$HOME/.cargo/bin:$PATH"
[ "$route" = debian ] && export PATH="/usr/bin:$PATH"
export PATH="$ROOT/end2end/node_modules/.bin:$PATH"
