#!/usr/bin/env bash
# The whole test suite: set up (dev), lint, type check, import layers, then every test, slow ones included.
#   bash scripts/test.sh            against the locked versions (README, CI)
#   bash scripts/test.sh --latest   against the newest releases pyproject.toml allows (the daily run);
#                                   on failure, lists the packages that differ from the lock
set -euo pipefail
cd "$(dirname "$0")/.."
LATEST=0
args=()
for arg in "$@"; do
  if [ "$arg" = --latest ]; then LATEST=1; else args+=("$arg"); fi
done
if [ "$LATEST" = 1 ]; then
  bash scripts/bootstrap.sh dev --latest
  export SLIPWAY_TEST_LATEST=1   # tests/unit/test_lock.py: this environment is not the lock
  VENV="${SLIPWAY_VENV:-.venv-latest}"
else
  bash scripts/bootstrap.sh dev
  VENV="${SLIPWAY_VENV:-.venv}"
fi
"$VENV/bin/ruff" check app eval bench tests scripts
# Types (zero errors at pyproject.toml's [tool.mypy] level) and the import layers of app/ ([tool.importlinter]).
"$VENV/bin/mypy"
"$VENV/bin/lint-imports" --no-cache
set +e
"$VENV/bin/python" -m pytest -p no:cacheprovider -ra --durations=25 ${args[@]+"${args[@]}"}
rc=$?
set -e
if [ "$LATEST" = 1 ] && [ "$rc" != 0 ]; then
  echo "The suite failed on the newest releases (exit $rc). What differs from the lock:" >&2
  "$VENV/bin/python" scripts/lockdiff.py requirements-dev.lock >&2
fi
exit "$rc"
