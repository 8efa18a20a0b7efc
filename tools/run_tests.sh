#!/usr/bin/env bash
# Set up the environment (reusing the cached mmcv wheel), check the --lite
# setup, then lint and run the whole test suite. This is README's test
# command and what CI runs.
#
#   bash tools/run_tests.sh [extra pytest arguments]
#
# 1. the default setup (mmcv with its compiled ops) in $CMDYSEG_VENV
#    (default .venv);
# 2. the --lite setup (mmcv-lite, no compiled mmcv ops) in its own
#    virtualenv, $CMDYSEG_LITE_VENV (default .venv-lite; made anew when
#    CI=true or CMDYSEG_LITE_FRESH=1, reused otherwise), and on it the
#    CMDyConv tests against the reference (tests/models/layers,
#    tests/models/heads), whose mmcv-ops comparisons skip there;
#    CMDYSEG_SKIP_LITE=1 leaves this step out;
# 3. flake8, isort and the whole suite on the default setup.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh --dev
PY="${CMDYSEG_VENV:-$ROOT/.venv}/bin/python"

if [ "${CMDYSEG_SKIP_LITE:-0}" != 1 ]; then
    LITE_VENV="${CMDYSEG_LITE_VENV:-$ROOT/.venv-lite}"
    lite_start=$(date +%s)
    if [ "${CI:-}" = true ] || [ "${CMDYSEG_LITE_FRESH:-0}" = 1 ]; then
        rm -rf "$LITE_VENV"
    fi
    echo "[run_tests] --lite setup in $LITE_VENV"
    CMDYSEG_VENV="$LITE_VENV" bash tools/setup_env.sh --lite --dev --cpu
    echo "[run_tests] CMDyConv tests on the --lite setup (no compiled mmcv ops)"
    # -p no:cacheprovider: the default setup's run below owns .pytest_cache
    "$LITE_VENV/bin/python" -m pytest -q -p no:cacheprovider \
        tests/models/layers tests/models/heads
    echo "[run_tests] --lite setup and its tests: $(( $(date +%s) - lite_start )) s"
fi

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
