#!/usr/bin/env bash
# Installs whatever is missing to build and run Turnstile (and, with --test, to test it).
# Idempotent: a second run only checks. Everything comes from the package registries
# (Debian, crates.io, npm); nothing is downloaded from anywhere else.
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing Debian packages: ${missing[*]}"
  if [ $apt_updated -eq 0 ]; then $SUDO apt-get update -q; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
}

mkdir -p target
# 1. The Rust toolchain for the wasm side.
if [ ! -s target/.wasm-route ]; then
  if command -v rustup >/dev/null 2>&1 &&
     { rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown ||
       timeout 90 rustup target add wasm32-unknown-unknown >/dev/null 2>&1; }; then
    echo rustup > target/.wasm-route
  else
    echo "setup: no rustup wasm32 target here; using Debian's rustc-web with -Zbuild-std"
    echo debian > target/.wasm-route
  fi
fi
if [ "$(cat target/.wasm-route)" = debian ]; then
  apt_install rustc-web cargo-web rust-web-src rust-web-llvm lld-22
elif ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
  # The standard library's sources let the wasm bundle be built with std itself optimised for
  # size and panics that abort at once (about 30 KB less gzipped). Optional: without them the
  # bundle is built against the prebuilt std.
  timeout 120 rustup component add rust-src >/dev/null 2>&1 ||
    echo "setup: rust-src unavailable; the wasm bundle uses the prebuilt std"
fi
# The test servers (nginx, Redis, PostgreSQL) are started by the tests themselves: where a package
# started its system service, it is stopped and disabled once.
no_service() {
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now "$1" >/dev/null 2>&1 || true
  elif [ -x "/etc/init.d/$1" ]; then
    $SUDO "/etc/init.d/$1" stop >/dev/null 2>&1 || true
    $SUDO update-rc.d "$1" disable >/dev/null 2>&1 || true
  fi
}
apt_install pkg-config ca-certificates
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_install nodejs npm
[ $want_test -eq 1 ] && apt_install chromium
# The reverse-proxy tests (server/tests/proxy.rs) start their own nginx; the package's system
# service is not wanted (where the package started it, it is stopped and disabled once).
if [ $want_test -eq 1 ] && ! dpkg -s nginx >/dev/null 2>&1; then
  apt_install nginx
  no_service nginx
fi
# The shared queue's tests (cluster/, server/tests/cluster*.rs) and `make cluster` start their
# own redis-server in a temporary directory; the package's system service is not wanted.
if [ $want_test -eq 1 ] && ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server
  no_service redis-server
fi
# The PostgreSQL store's tests (server/src/store/, server/tests/postgres.rs) start their own
# throwaway server from /usr/lib/postgresql/<version>/bin; the package's system service is not
# wanted (where the package started it, it is stopped and disabled once).
if [ $want_test -eq 1 ] && ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
  apt_install postgresql
  no_service postgresql
fi

source scripts/env.sh

# 2. wasm-bindgen CLI, exactly the version of the wasm-bindgen crate in Cargo.lock.
wb_version="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wb_version" ]; then
  echo "setup: installing wasm-bindgen-cli $wb_version (about 4 minutes, once)"
  # Without --locked: its lockfile pins a crate version the registry mirror may lack.
  cargo install wasm-bindgen-cli --version "$wb_version" --quiet
fi

# 2b. wasm-split-cli (the binary of the wasm_split_cli_support crate, which cargo-leptos' `--split`
# uses as a library): splits the lazily loaded routes out of the wasm bundle. About 3 minutes, once.
split_version=0.2.4
# (It has no --version; cargo's list of installed crates tells.)
if ! command -v wasm-split-cli >/dev/null 2>&1 ||
   ! cargo install --list | grep -qx "wasm_split_cli_support v$split_version:"; then
  echo "setup: installing wasm-split-cli $split_version (a few minutes, once)"
  cargo install wasm_split_cli_support --version "$split_version" --features build-binary --locked --quiet ||
    cargo install wasm_split_cli_support --version "$split_version" --features build-binary --quiet
fi

# 3. cargo-deny, for the test command's license, ban and source checks (a few minutes, once).
deny_version=0.20.2
if [ $want_test -eq 1 ] && [ "$(cargo deny --version 2>/dev/null | awk '{print $2}')" != "$deny_version" ]; then
  echo "setup: installing cargo-deny $deny_version (a few minutes, once)"
  cargo install cargo-deny --version "$deny_version" --locked --quiet ||
    cargo install cargo-deny --version "$deny_version" --quiet
fi

# 4. npm packages: wasm-opt (binaryen; Debian's is too old and breaks hydration) and Playwright.
if [ ! -f end2end/node_modules/.package-lock.json ] ||
   ! cmp -s end2end/package-lock.json end2end/node_modules/.turnstile-lock; then
  echo "setup: installing npm packages in end2end/"
  (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  cp end2end/package-lock.json end2end/node_modules/.turnstile-lock
fi
echo "setup: ok ($(cat target/.wasm-route) wasm route, wasm-bindgen $wb_version)"
