#!/usr/bin/env bash
# Runs every test: unit and integration tests (cargo), then the browser suite (Playwright in
# Debian's Chromium) against a freshly built server that each test file starts itself.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

echo "test: dependencies (cargo deny: licenses, bans, sources)"
cargo deny --log-level error check licenses bans sources

echo "test: the embedded model"
scripts/model.sh

echo "test: cargo test (unit + integration)"
# Not --workspace: that would unify the browser-only `hydrate` features into the server build.
cargo test -p app -p server -p turnstile-load -p turnstile-llm -p turnstile-calc -p turnstile-scheduler -p turnstile-cluster --no-fail-fast

echo "test: building the site for the browser suite"
scripts/build.sh

echo "test: browser suite (Playwright, Chromium)"
tgt="$(realpath "${CARGO_TARGET_DIR:-target}")"
cd end2end
TURNSTILE_BIN="$tgt/debug/turnstile" TURNSTILE_SITE_ROOT="$tgt/site" npx playwright test
