#!/usr/bin/env bash
# The scale proofs by hand, with the soak and a report: three replicas behind HAProxy on the machine's
# Postgres and Redis (tests/scale). Takes about 14 minutes (the soak alone is 10).
#   bash scripts/scale.sh [OUT_DIR]          # default: scale-report/
# Environment: SLIPWAY_SCALE_SOAK_S (600), SLIPWAY_SCALE_LIMIT_S (60; 30 in the suite), SLIPWAY_SCALE_CUT_S (30).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-scale-report}"
VENV="${SLIPWAY_VENV:-.venv}"
bash scripts/bootstrap.sh dev >/dev/null
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
rm -f "$OUT/figures.json"
export SLIPWAY_SCALE_REPORT="$OUT/figures.json"
export SLIPWAY_SCALE_SOAK_S="${SLIPWAY_SCALE_SOAK_S:-600}"
export SLIPWAY_SCALE_LIMIT_S="${SLIPWAY_SCALE_LIMIT_S:-60}"
set +e
"$VENV/bin/python" -m pytest -p no:cacheprovider -q -s tests/scale
rc=$?
set -e
"$VENV/bin/python" -m tests.scale.report "$OUT/figures.json" "$OUT"
exit "$rc"
