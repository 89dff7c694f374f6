"""Checkpoint helpers: loading SAM weights and weights-only-safe mmengine checkpoints."""
from __future__ import annotations

import os

import torch
from torch import nn


def load_sam_weights(module: nn.Module, checkpoint: str, prefix: str) -> None:
    """Load the ``prefix``-ed part of a SAM checkpoint strictly into ``module``.

    Accepts full SAM checkpoints (keys ``image_encoder.*``, ``prompt_encoder.*``,
    ``mask_decoder.*``) and files that hold only the module's own keys.

    Args:
        module: Target module (e.g. an ``ImageEncoderViT``).
        checkpoint: Local path of the checkpoint.
        prefix: Key prefix of the part to load, e.g. ``'image_encoder.'``.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If keys are missing/unexpected or shapes differ (e.g. another SAM size).
    """
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f'SAM checkpoint {checkpoint!r} not found. Download it '
                                '(e.g. sam_vit_h_4b8939.pth) and give its local path.')
    state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    state = state.get('state_dict', state)
    if any(k.startswith(prefix) for k in state):
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        detail = '; '.join(f'{k}: checkpoint {tuple(state[k].shape)} vs model '
                           f'{tuple(own[k].shape)}' for k in wrong[:3])
        raise ValueError(
            f'{checkpoint!r} does not match the configured SAM {prefix.rstrip(".")}: '
            f'{len(missing)} missing keys {missing[:3]}, {len(unexpected)} unexpected keys '
            f'{unexpected[:3]}, {len(wrong)} shape mismatches [{detail}]. Check that the '
            'config arch (vit_h / vit_l / vit_b) matches the checkpoint.')
    module.load_state_dict(state, strict=True)


def register_checkpoint_safe_globals() -> None:
    """Allow-list the few non-tensor types inside mmengine checkpoints.

    torch >= 2.6 loads with ``weights_only=True``; mmengine checkpoints also hold
    ``HistoryBuffer`` objects and numpy arrays / scalars (message hub, metrics).
    Only these types are allowed, so arbitrary pickled code is still refused.
    """
    import numpy as np
    from mmengine.logging import HistoryBuffer
    safe = [HistoryBuffer, np.ndarray, np.dtype, np.core.multiarray._reconstruct,
            np.core.multiarray.scalar]
    safe += [type(np.dtype(name)) for name in ('float64', 'float32', 'int64', 'int32', 'bool')]
    torch.serialization.add_safe_globals(safe)
