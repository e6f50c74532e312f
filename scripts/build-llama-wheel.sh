#!/usr/bin/env bash
# Build llama-cpp-python once, portably, into a wheel folder that survives fresh clones.
# Why: a native build segfaults on AMX CPUs (shared FINDINGS), pip's wheel cache does not key
# on CMAKE_ARGS, and a from-source compile costs 3-7 minutes: build once, re-use everywhere
# (the venv, the Docker build context).
set -euo pipefail
VERSION="${LLAMA_CPP_VERSION:-0.3.36}"
WHEEL_DIR="${SLIPWAY_WHEEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/slipway/wheels}"
PY="${1:-python3}"
mkdir -p "$WHEEL_DIR"
if ls "$WHEEL_DIR"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
  echo "llama-cpp-python $VERSION wheel already built in $WHEEL_DIR"
  exit 0
fi
echo "Building llama-cpp-python $VERSION (portable, GGML_NATIVE=OFF) into $WHEEL_DIR; this takes 3-7 minutes once."
tmp="$(mktemp -d)"
CMAKE_ARGS="-DGGML_NATIVE=OFF ${EXTRA_CMAKE_ARGS:-}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
  "$PY" -m pip wheel --no-cache-dir --no-deps -w "$tmp" "llama-cpp-python==$VERSION"
mv "$tmp"/llama_cpp_python-*.whl "$WHEEL_DIR"/
rm -rf "$tmp"
echo "built: $(ls "$WHEEL_DIR"/llama_cpp_python-*.whl)"
