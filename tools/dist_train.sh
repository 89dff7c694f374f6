#!/usr/bin/env bash
# Distributed training with torchrun: tools/dist_train.sh CONFIG GPUS [train.py args...]
# GPUS processes per node; without CUDA the processes train on CPU through a gloo group.
# Environment: PORT (29500), PYTHON (python); several nodes: NNODES, NODE_RANK, MASTER_ADDR.
CONFIG=$1
GPUS=$2
PORT=${PORT:-29500}
"${PYTHON:-python}" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="$PORT" --nproc_per_node="$GPUS" \
    "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "${@:3}"
