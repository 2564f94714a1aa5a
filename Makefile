# The two commands a newcomer needs (see README.md):
#   make run    set up what is missing, build, and serve on http://127.0.0.1:3000
#   make test   set up what is missing (Chromium too) and run every test
.PHONY: run test setup build build-release lint fmt clean-site

run: setup
	scripts/model.sh
	scripts/build.sh
	./target/debug/turnstile

test:
	scripts/setup.sh --test
	scripts/test.sh

setup:
	scripts/setup.sh

build: setup
	scripts/build.sh

build-release: setup
	scripts/build.sh --release

# Clippy comes with rustup's toolchain (not with Debian's rustc-web); run it where it exists.
lint:
	cargo clippy --workspace --all-targets -- -D warnings
	cargo fmt --all --check

fmt:
	cargo fmt --all

clean-site:
	rm -rf target/site

# A whole deployment on one machine: Redis, PostgreSQL, two web instances (ports 3000, 3001)
# and two device workers sharing one fair queue (docs/scaling.md). Ctrl-C stops it all.
.PHONY: cluster
cluster:
	scripts/setup.sh --test
	scripts/cluster.sh

# Fuzz the inputs users control (client WebSocket messages, calculator jobs, Markdown rendering)
# with cargo-fuzz, each target for FUZZ_SECONDS (default 60): `FUZZ_SECONDS=300 make fuzz`.
.PHONY: fuzz
fuzz:
	scripts/fuzz.sh

# Every benchmark (criterion micro-benchmarks, turnstile-load scenarios against a release
# server, the page's bundle and hydration time); docs/benchmarks.md records the figures.
.PHONY: bench
bench: setup
	scripts/bench.sh
