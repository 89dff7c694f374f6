"""RNG states of the processes, saved with checkpoints and restored on resume."""

from __future__ import annotations

import random

import numpy as np
import torch


def capture_rng_state() -> dict:
    """The RNG states of Python, NumPy, torch (CPU) and every CUDA device."""
    state = dict(
        python=random.getstate(),
        numpy=np.random.get_state(),
        torch=torch.get_rng_state(),
    )
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Set the RNG states captured by :func:`capture_rng_state` (CUDA when both have it)."""
    random.setstate(_as_python_state(state['python']))
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        states = state['cuda'][: torch.cuda.device_count()]
        for device, cuda_state in enumerate(states):
            torch.cuda.set_rng_state(cuda_state, device)


def _as_python_state(state) -> tuple:
    """``random.setstate`` needs tuples; a checkpoint round trip may give lists."""
    version, internal, gauss = state
    return version, tuple(internal), gauss
