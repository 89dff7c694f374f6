"""Read the weights of a Hugging Face-style checkpoint folder, sharded or not.

Supported layouts (first match wins): ``model.safetensors.index.json`` + shards,
``model.safetensors``, ``pytorch_model.bin.index.json`` + shards, ``pytorch_model.bin``.
``.bin`` files are loaded with ``torch.load(weights_only=True)``: tensors only, no code.
"""

from __future__ import annotations

import json
import os

import torch
from safetensors.torch import load_file

SAFETENSORS_INDEX = 'model.safetensors.index.json'
SAFETENSORS_FILE = 'model.safetensors'
BIN_INDEX = 'pytorch_model.bin.index.json'
BIN_FILE = 'pytorch_model.bin'
#: Layouts in the order they are looked for: (file name, is an index).
LAYOUTS = (
    (SAFETENSORS_INDEX, True),
    (SAFETENSORS_FILE, False),
    (BIN_INDEX, True),
    (BIN_FILE, False),
)


def weight_files(folder: str) -> list[str]:
    """Paths of the weight files of ``folder`` (every shard named by an index).

    Raises:
        FileNotFoundError: If the folder, or a shard named by the index, is missing, or
            the folder holds none of the supported layouts.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'Checkpoint folder {folder!r} does not exist.')
    for name, is_index in LAYOUTS:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        if not is_index:
            return [path]
        with open(path, encoding='utf-8') as f:
            shards = sorted(set(json.load(f)['weight_map'].values()))
        missing = [s for s in shards if not os.path.isfile(os.path.join(folder, s))]
        if missing:
            raise FileNotFoundError(
                f'{path} names shards that are not in {folder}: {missing}. Copy every shard '
                'of the checkpoint next to its index.'
            )
        return [os.path.join(folder, s) for s in shards]
    raise FileNotFoundError(
        f'{folder} holds no weights: expected one of {[name for name, _ in LAYOUTS]}.'
    )


def load_weight_file(path: str) -> dict[str, torch.Tensor]:
    """One ``.safetensors`` or ``.bin`` file as a dict of tensors (no code runs)."""
    if path.endswith('.safetensors'):
        return load_file(path)
    state = torch.load(path, map_location='cpu', weights_only=True)
    return state.get('state_dict', state) if isinstance(state, dict) else state


def read_state_dict(folder: str) -> dict[str, torch.Tensor]:
    """All tensors of the checkpoint in ``folder``, merged over its shards.

    Raises:
        ValueError: If two shards hold the same key.
    """
    state: dict[str, torch.Tensor] = {}
    for path in weight_files(folder):
        part = load_weight_file(path)
        twice = sorted(set(state) & set(part))
        if twice:
            raise ValueError(f'{path} repeats keys of another shard, e.g. {twice[:3]}.')
        state.update(part)
    return state
