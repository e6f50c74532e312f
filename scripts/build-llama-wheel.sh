#!/usr/bin/env bash
# Build llama-cpp-python once, portably, into a wheel folder that survives fresh clones.
# Why: a native build segfaults on AMX CPUs (shared FINDINGS), pip's wheel cache does not key
# on CMAKE_ARGS, and a from-source compile costs 3-7 minutes: build once, re-use everywhere
# (the venv, the Docker build context).
# The version and the sdist's sha256 come from requirements.lock (LLAMA_CPP_VERSION and
# LLAMA_CPP_SHA256 override them; LLAMA_CPP_SHA256=none skips the check, for --latest).
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=requirements.lock
VERSION="${LLAMA_CPP_VERSION:-$(sed -n 's/^llama-cpp-python==\([^ ;\\]*\).*/\1/p' "$LOCK")}"
SHA256="${LLAMA_CPP_SHA256:-$(awk '/^llama-cpp-python==/{f=1} f&&/--hash=sha256:/{sub(/.*--hash=sha256:/,""); sub(/[ \\].*/,""); print; exit}' "$LOCK")}"
WHEEL_DIR="${SLIPWAY_WHEEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/slipway/wheels}"
PY="${1:-python3}"
[ -n "$VERSION" ] || { echo "build-llama-wheel: no llama-cpp-python version in $LOCK" >&2; exit 2; }
mkdir -p "$WHEEL_DIR"
if ls "$WHEEL_DIR"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
  echo "llama-cpp-python $VERSION wheel already built in $WHEEL_DIR"
  exit 0
fi
echo "Building llama-cpp-python $VERSION (portable, GGML_NATIVE=OFF) into $WHEEL_DIR; this takes 3-7 minutes once."
tmp="$(mktemp -d)"
req="$tmp/llama.txt"
if [ "$SHA256" = none ]; then
  echo "llama-cpp-python==$VERSION" >"$req"
else
  echo "llama-cpp-python==$VERSION --hash=sha256:$SHA256" >"$req"   # exactly the locked sdist
fi
CMAKE_ARGS="-DGGML_NATIVE=OFF ${EXTRA_CMAKE_ARGS:-}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
  "$PY" -m pip wheel --no-cache-dir --no-deps --no-binary llama-cpp-python -w "$tmp/out" -r "$req"
mv "$tmp"/out/llama_cpp_python-*.whl "$WHEEL_DIR"/
rm -rf "$tmp"
echo "built: $(ls "$WHEEL_DIR"/llama_cpp_python-"$VERSION"-*.whl)"
