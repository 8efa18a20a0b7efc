#!/usr/bin/env bash
# Distributed training with torchrun (torch.distributed.run).
#
#   bash tools/dist_train.sh CONFIG GPUS [train.py arguments]
#
# GPUS is the number of processes on this node. For several nodes, run it
# on every node with NNODES, NODE_RANK, MASTER_ADDR and PORT set, e.g.
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.1.1.1 PORT=29500 \
#       bash tools/dist_train.sh CONFIG 8
# Without CUDA the processes use the gloo backend (CPU training).
# PYTHON selects the interpreter (default: python).
#
# First, one process runs `train.py CONFIG --check ...` (the config, the data
# folders, the --resume checkpoint; nothing is written): bad input then ends
# with train.py's one line "train.py: error: ..." and status 1, instead of
# one error per process followed by torchrun's multi-line failure report.
# PREFLIGHT=0 skips that check.
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [train.py arguments]" >&2
    exit 2
fi

CONFIG=$1
GPUS=$2
shift 2
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
    "$PYTHON" "$ROOT/tools/train.py" "$CONFIG" --check "$@"
fi

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$GPUS" \
    "$ROOT/tools/train.py" \
    "$CONFIG" \
    --launcher pytorch \
    "$@"
