#!/usr/bin/env bash
# The chat engine's side-by-side anchor: llama.cpp's llama-batched-bench on the embedded model,
# with the same file and threads as our own forward benchmark (docs/benchmarks.md).
#
# Builds llama.cpp once, in target/anchors/, from the sources that PyPI's llama-cpp-python sdist
# vendors, with cmake from PyPI and -DGGML_NATIVE=ON (about 8 minutes on 2 cores). Not run by CI;
# nothing of it is committed.
#
#   scripts/anchor-llamacpp.sh            # -t 2, batches 1,2,4,8,16
#   THREADS=1 scripts/anchor-llamacpp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.3.36
dir="$PWD/target/anchors"
bench="$dir/build/bin/llama-batched-bench"
model="${MODEL:-data/models/SmolLM2-135M-Instruct.Q8_0.gguf}"
[ -s "$model" ] || scripts/model.sh

if [ ! -x "$bench" ]; then
  echo "anchor: building llama.cpp from llama-cpp-python==$version (once, about 8 minutes)"
  mkdir -p "$dir"
  [ -x "$dir/venv/bin/cmake" ] || { python3 -m venv "$dir/venv" && "$dir/venv/bin/pip" install --quiet cmake; }
  if ! ls "$dir"/llama_cpp_python-$version.tar.gz >/dev/null 2>&1; then
    # --no-binary for this package only: --no-binary :all: would build every build dependency too.
    "$dir/venv/bin/pip" download --quiet --no-deps --no-binary llama-cpp-python -d "$dir" \
      "llama-cpp-python==$version"
  fi
  rm -rf "$dir/src" && mkdir -p "$dir/src"
  tar -xzf "$dir"/llama_cpp_python-$version.tar.gz -C "$dir/src" --strip-components=1
  "$dir/venv/bin/cmake" -S "$dir/src/vendor/llama.cpp" -B "$dir/build" -DGGML_NATIVE=ON \
    -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
  "$dir/venv/bin/cmake" --build "$dir/build" -j"$(nproc)" --target llama-batched-bench llama-bench >/dev/null
fi
echo "anchor: $bench -m $model -t ${THREADS:-2} -npp 40 -ntg 128 -npl ${BATCHES:-1,2,4,8,16}"
"$bench" -m "$model" -t "${THREADS:-2}" -npp 40 -ntg 128 -npl "${BATCHES:-1,2,4,8,16}" 2>&1 |
  grep -E '^\|| PP |main:' || true
