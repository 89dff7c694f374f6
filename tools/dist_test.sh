#!/usr/bin/env bash
# Distributed evaluation with torchrun: tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# GPUS processes per node; without CUDA the processes evaluate on CPU through a gloo group.
# Environment: PORT (29500), PYTHON (python); several nodes: NNODES, NODE_RANK, MASTER_ADDR.
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
PORT=${PORT:-29500}
"${PYTHON:-python}" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="$PORT" --nproc_per_node="$GPUS" \
    "$(dirname "$0")/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
