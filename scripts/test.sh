#!/usr/bin/env bash
# The whole test suite: set up (dev), lint, then every test, slow ones included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev
.venv/bin/ruff check app eval bench tests
exec .venv/bin/python -m pytest -p no:cacheprovider -ra "$@"
