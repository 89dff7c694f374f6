"""Seeded per-sample draws that change with every draw of a :class:`MixedDataset`.

A source dataset seeds its random choices (templates, which classes / sentences, LISA's
explanatory answer type) with ``(seed, sample index)``. On its own that fixes every
choice of a sample for good. Inside a ``MixedDataset``, draw ``i`` of the mix (a new
index every epoch with ``FreshDrawSampler``) is added to the seed, so an image visited
again gets new choices, as LISA re-draws them at every visit, while the result stays a
function of the seeds and indices only (the same in every run, worker and rank).
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import numpy as np

_DRAW_KEY: contextvars.ContextVar[tuple[int, ...]] = contextvars.ContextVar(
    'lisakit_draw_key', default=()
)


def draw_key() -> tuple[int, ...]:
    """``(mix seed, draw index)`` of every enclosing ``MixedDataset`` draw; ``()`` outside."""
    return _DRAW_KEY.get()


@contextlib.contextmanager
def mixed_draw(seed: int, idx: int) -> Iterator[None]:
    """Mark the sample read inside this block as draw ``idx`` of a mix seeded ``seed``."""
    token = _DRAW_KEY.set(_DRAW_KEY.get() + (int(seed), int(idx)))
    try:
        yield
    finally:
        _DRAW_KEY.reset(token)


def sample_rng(seed: int, *key: int) -> np.random.Generator:
    """The generator of one sample: ``default_rng([seed, *key])`` outside a mix, with the
    current :func:`draw_key` appended inside one."""
    return np.random.default_rng([int(seed), *(int(k) for k in key), *draw_key()])
