#!/usr/bin/env bash
# Set up the environment (reusing the cached mmcv wheel), then lint and run
# the whole test suite. This is README's test command and what CI runs.
#
#   bash tools/run_tests.sh [extra pytest arguments]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh --dev
PY="${CMDYSEG_VENV:-$ROOT/.venv}/bin/python"

paths=()
for p in cmdyseg configs tools tests demo docs setup.py; do
    [ -e "$p" ] && paths+=("$p")
done
echo '[run_tests] flake8'
"$PY" -m flake8 "${paths[@]}"
echo '[run_tests] isort'
"$PY" -m isort --check-only --diff "${paths[@]}"
echo '[run_tests] pytest'
"$PY" -m pytest tests "$@"
