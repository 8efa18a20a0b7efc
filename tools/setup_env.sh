#!/usr/bin/env bash
# Set up cmdyseg's environment in a virtualenv (default: .venv in the repo).
#
#   bash tools/setup_env.sh          runtime stack + cmdyseg (editable)
#   bash tools/setup_env.sh --dev    the same plus the test/lint tools
#
# The stack: torch 2.13.0 (CPU wheel), mmengine 0.10.7, mmcv 2.1.0 built
# with its compiled ops, mmaction2 1.2.0, gensim, pycocotools (see
# requirements/*.txt for why each pin exists). mmcv is source-only on PyPI
# and takes ~16 minutes to build on 2 cores, so the built wheel is cached
# in $CMDYSEG_CACHE_DIR (default ~/.cache/cmdyseg), keyed by the mmcv,
# torch and Python versions and the platform; later runs reuse it.
#
# Environment: PYTHON (interpreter, default python3.11 or python3),
# CMDYSEG_VENV (default <repo>/.venv), CMDYSEG_CACHE_DIR, MAX_JOBS.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV=0
for arg in "$@"; do
    case "$arg" in
        --dev) DEV=1 ;;
        *) echo "setup_env.sh: unknown argument '$arg' (expected --dev)" >&2; exit 2 ;;
    esac
done

TORCH_VERSION=2.13.0
MMCV_VERSION=2.1.0
VENV="${CMDYSEG_VENV:-$ROOT/.venv}"
CACHE_DIR="${CMDYSEG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cmdyseg}"
if [ -z "${PYTHON:-}" ]; then
    if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi

log() { printf '[setup_env] %s\n' "$*"; }
start=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# requirements/build.txt constrains every install (setuptools < 80, see there)
pip_install() {
    "$PY" -m pip install --disable-pip-version-check -q -c "$ROOT/requirements/build.txt" "$@"
}

# Build tools first: mmcv is built without build isolation against this torch.
pip_install -r "$ROOT/requirements/build.txt"
if ! "$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
    log "installing torch==$TORCH_VERSION"
    pip_install "torch==$TORCH_VERSION"
fi

# The mm* packages are installed without their declared dependencies.
log "pip may report that mmcv / mmengine / mmaction2 miss opencv-python," \
    "opencv-contrib-python or decord: expected, opencv-python-headless" \
    "replaces them (see requirements/mminstall.txt)"

# mmcv with compiled ops, from the wheel cache or built once.
PY_TAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
PLAT=$("$PY" -c 'import sysconfig; print(sysconfig.get_platform().replace("-", "_"))')
KEY="mmcv-${MMCV_VERSION}_torch-${TORCH_VERSION}_${PY_TAG}_${PLAT}"
WHEEL_DIR="$CACHE_DIR/wheels/$KEY"
wheel=$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
    log "no cached mmcv wheel for $KEY: building mmcv $MMCV_VERSION with ops (about 16 min on 2 cores)"
    mkdir -p "$CACHE_DIR/wheels"
    tmp=$(mktemp -d "$CACHE_DIR/wheels/.build-XXXXXX")
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" FORCE_CUDA=0 \
        "$PY" -m pip wheel --disable-pip-version-check -q --no-deps --no-build-isolation \
        --no-binary mmcv "mmcv==$MMCV_VERSION" -w "$tmp"
    built=$(ls "$tmp"/mmcv-*.whl | head -n 1)
    # publish atomically: a half-built wheel never appears under $WHEEL_DIR
    mkdir -p "$tmp/out" && mv "$built" "$tmp/out/"
    if ! mv -T "$tmp/out" "$WHEEL_DIR" 2>/dev/null; then
        log "another build published $WHEEL_DIR first; using it"
    fi
    rm -rf "$tmp"
    wheel=$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl | head -n 1)
else
    log "using cached mmcv wheel $wheel"
fi
if ! "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('mmcv') != '$MMCV_VERSION')" 2>/dev/null; then
    pip_install --no-deps --force-reinstall "$wheel"
fi

# Runtime requirements (including the real dependencies of the mm* packages),
# then the mm* packages themselves without their declared dependencies.
# mm* lines (mminstall.txt's, and mmsegmentation in tests.txt) are installed
# without their declared dependencies; the rest normally.
mm_lines() { grep -v '^\s*#' "$1" | grep '^mm' | grep -v '^mmcv' || true; }
reqs=(-r "$ROOT/requirements/runtime.txt")
mm_reqs=($(mm_lines "$ROOT/requirements/mminstall.txt"))
if [ "$DEV" = 1 ]; then
    dev_reqs="$(mktemp)"
    grep -v '^mm' "$ROOT/requirements/tests.txt" >"$dev_reqs"
    reqs+=(-r "$dev_reqs")
    mm_reqs+=($(mm_lines "$ROOT/requirements/tests.txt"))
fi
pip_install "${reqs[@]}"
[ "$DEV" = 1 ] && rm -f "$dev_reqs"
"$PY" -m pip install --disable-pip-version-check -q --no-deps "${mm_reqs[@]}"
# cmdyseg itself, editable; this compiles its CPU kernel (about a minute on
# 2 cores), so it is skipped when this checkout is installed already and the
# built kernel imports and is newer than its sources.
if ! "$PY" - "$ROOT" <<'EOF' 2>/dev/null; then
import os, sys
root = os.path.realpath(sys.argv[1])
import cmdyseg
assert os.path.realpath(cmdyseg.__file__).startswith(root + os.sep)
if os.environ.get('CMDYSEG_WITH_OPS', '1') != '0':
    from cmdyseg.models.layers import _cmdyconv_cpu as ext
    srcs = [os.path.join(root, 'setup.py')]
    csrc = os.path.join(root, 'cmdyseg', 'models', 'layers', 'csrc')
    srcs += [os.path.join(csrc, f) for f in os.listdir(csrc)]
    built = os.path.getmtime(ext.__file__)
    assert all(os.path.getmtime(f) <= built for f in srcs)
EOF
    log "installing cmdyseg (editable) and compiling its CPU kernel"
    pip_install --no-deps --no-build-isolation -e "$ROOT"
else
    log "cmdyseg is installed from $ROOT and its CPU kernel is up to date"
fi

# Prove the stack imports and mmcv's compiled ops load.
"$PY" - <<'EOF'
import cmdyseg  # noqa: F401  (applies cmdyseg.utils.compat)
from cmdyseg.utils import collect_env
env = collect_env()
for key in ('Python', 'PyTorch', 'MMEngine', 'MMCV', 'MMCV compiled ops',
            'MMAction2', 'cmdyseg', 'cmdyseg CPU kernel'):
    print(f'[setup_env] {key}: {env.get(key)}')
if env['MMCV compiled ops'] != 'yes':
    raise SystemExit('mmcv compiled ops do not load: ' + env['MMCV compiled ops'])
import os
if (os.environ.get('CMDYSEG_WITH_OPS', '1') != '0'
        and not env['cmdyseg CPU kernel'].startswith('yes')):
    raise SystemExit('cmdyseg\'s compiled CPU kernel does not load: '
                     + env['cmdyseg CPU kernel'] + ' (set CMDYSEG_WITH_OPS=0 '
                     'to go without it: slower on CPU, same results)')
import mmaction.models  # noqa: F401  (fails loudly if the stack is broken)
EOF
log "environment ready in $VENV ($(( $(date +%s) - start )) s)"
