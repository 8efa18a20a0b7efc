#!/usr/bin/env bash
# Distributed testing with torchrun (torch.distributed.run).
#
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py arguments]
#
# GPUS is the number of processes on this node. For several nodes, run it
# on every node with NNODES, NODE_RANK, MASTER_ADDR and PORT set.
# Without CUDA the processes use the gloo backend.
# PYTHON selects the interpreter (default: python).
#
# First, one process runs `test.py CONFIG CHECKPOINT --check ...` (the
# config, the data folder, that the checkpoint loads into the model; nothing
# is written): bad input then ends with test.py's one line
# "test.py: error: ..." and status 1, instead of one error per process
# followed by torchrun's multi-line failure report. PREFLIGHT=0 skips it.
set -euo pipefail

if [ "$#" -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py arguments]" >&2
    exit 2
fi

CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# glibc malloc settings that spare each CPU step its page faults
# (tools/malloc_env.py says why; CMDYSEG_MALLOC_TUNABLES=0: none)
GLIBC_TUNABLES="$("$PYTHON" "$ROOT/tools/malloc_env.py")"; export GLIBC_TUNABLES

if [ "${PREFLIGHT:-1}" != 0 ]; then
    PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
    "$PYTHON" "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --check "$@"
fi

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$GPUS" \
    "$ROOT/tools/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch \
    "$@"
