"""Checkpoint helpers: loading SAM weights and weights-only-safe mmengine checkpoints."""

from __future__ import annotations

import os
import pickle
import types

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
        raise FileNotFoundError(
            f'SAM checkpoint {checkpoint!r} not found. Download it '
            '(e.g. sam_vit_h_4b8939.pth) and give its local path.'
        )
    state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    state = state.get('state_dict', state)
    if any(k.startswith(prefix) for k in state):
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        detail = '; '.join(
            f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
            for k in wrong[:3]
        )
        raise ValueError(
            f'{checkpoint!r} does not match the configured SAM {prefix.rstrip(".")}: '
            f'{len(missing)} missing keys {missing[:3]}, {len(unexpected)} unexpected keys '
            f'{unexpected[:3]}, {len(wrong)} shape mismatches [{detail}]. Check that the '
            'config arch (vit_h / vit_l / vit_b) matches the checkpoint.'
        )
    module.load_state_dict(state, strict=True)


#: Globals that may appear in lisakit / mmengine checkpoints: tensors, containers,
#: numpy arrays and scalars (metrics), and mmengine's ``HistoryBuffer`` (message hub).
SAFE_GLOBALS = frozenset(
    {
        ('collections', 'OrderedDict'),
        ('torch._utils', '_rebuild_tensor_v2'),
        ('torch._utils', '_rebuild_parameter'),
        ('torch', 'Size'),
        ('_codecs', 'encode'),
        ('numpy', 'dtype'),
        ('numpy', 'ndarray'),
        ('numpy.core.multiarray', '_reconstruct'),
        ('numpy.core.multiarray', 'scalar'),
        ('numpy._core.multiarray', '_reconstruct'),
        ('numpy._core.multiarray', 'scalar'),
        ('mmengine.logging.history_buffer', 'HistoryBuffer'),
    }
)
#: Env var that turns on full (unsafe) unpickling for checkpoints you trust.
UNSAFE_LOAD_ENV = 'LISAKIT_UNSAFE_LOAD'


def _history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to HistoryBuffer's statistics methods (pickled by name)."""
    from mmengine.logging import HistoryBuffer

    if obj is HistoryBuffer and name in ('min', 'max', 'mean', 'current'):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'Refusing getattr({obj!r}, {name!r}) while loading a checkpoint.')


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that only builds the types in :data:`SAFE_GLOBALS`."""

    def find_class(self, module: str, name: str):
        if (module, name) in (('builtins', 'getattr'), ('__builtin__', 'getattr')):
            return _history_buffer_getattr
        if module == 'torch' and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module.startswith('numpy.dtypes') and name.endswith('DType'):
            return super().find_class(module, name)
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f'The checkpoint contains the global {module}.{name}, which lisakit does not load '
            f'by default because unpickling it could run arbitrary code. If you trust the file, '
            f'set {UNSAFE_LOAD_ENV}=1 to load it anyway.'
        )


#: A ``pickle_module`` for ``torch.load`` that uses :class:`SafeUnpickler`.
safe_pickle = types.SimpleNamespace(
    Unpickler=SafeUnpickler, load=pickle.load, __name__='lisakit_safe_pickle'
)


def load_from_lisakit_safe(filename: str, map_location=None):
    """Load a local checkpoint with restricted unpickling (see :class:`SafeUnpickler`).

    Args:
        filename: Local checkpoint path.
        map_location: As in ``torch.load``.

    Raises:
        FileNotFoundError: If the file does not exist.
        pickle.UnpicklingError: If it holds globals outside the allow-list.
    """
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'Checkpoint {filename!r} does not exist.')
    if os.environ.get(UNSAFE_LOAD_ENV) == '1':
        return torch.load(filename, map_location=map_location, weights_only=False)
    return torch.load(
        filename, map_location=map_location, weights_only=False, pickle_module=safe_pickle
    )


def register_checkpoint_loader() -> None:
    """Make mmengine load local checkpoints through :func:`load_from_lisakit_safe`.

    mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6
    then refuses its own checkpoints (HistoryBuffer, numpy). This replaces
    mmengine's local-file scheme by lisakit's restricted loader.
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    CheckpointLoader.register_scheme(prefixes='', force=True)(load_from_lisakit_safe)
