"""Torch dtype names in configs, checked once."""

from __future__ import annotations

import torch

#: The dtype names a config may give (``torch_dtype='bfloat16'``).
DTYPE_NAMES = ('float32', 'bfloat16', 'float16')


def resolve_dtype(name: str, key: str) -> torch.dtype:
    """The ``torch.dtype`` called ``name``.

    Args:
        name: A dtype name such as ``'bfloat16'``.
        key: The config key that gave it, named in the error.

    Raises:
        ValueError: If ``name`` is not a torch dtype name.
    """
    dtype = getattr(torch, name, None) if isinstance(name, str) else None
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f'{key}={name!r} is not a torch dtype; use one of {DTYPE_NAMES}.')
    return dtype
