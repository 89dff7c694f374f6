"""mmengine's ``DefaultSampler`` that can start an epoch part-way (exact resume)."""

from __future__ import annotations

import math
from typing import Iterator

import torch
from mmengine.dataset import DefaultSampler as MMEngineDefaultSampler

from lisakit.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module(name='DefaultSampler')
class DefaultSampler(MMEngineDefaultSampler):
    """mmengine's ``DefaultSampler``, plus :meth:`skip` to resume inside an epoch.

    Configs name it ``type='DefaultSampler'``; the lisakit scope finds this class
    before mmengine's. Without a skip it yields exactly what mmengine's does: the
    epoch's order (a permutation seeded by ``seed + epoch``, or ``0..N-1``), padded by
    repeating its start to a multiple of the world size (``round_up``), rank ``r``
    taking positions ``r, r + W, ...``.

    Resume semantics: the epoch's order is one global sequence, the same for every
    world size. ``skip(n)`` drops its first ``n`` positions (the samples all ranks
    consumed before the checkpoint) from the next iteration; the rest is padded and
    split between the current ranks as above. With the same world size the
    remaining batches are exactly those of an uninterrupted run; with another world
    size every remaining sample of the epoch is still seen once, split anew.
    """

    _skip = 0

    def skip(self, num_samples: int) -> None:
        """Leave out the first ``num_samples`` of the epoch's order, once (next ``iter``)."""
        if num_samples < 0:
            raise ValueError(f'skip({num_samples}): expected a count >= 0.')
        self._skip = int(num_samples)

    def epoch_order(self) -> list[int]:
        """The epoch's global order of dataset indices, before padding and rank split."""
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            return torch.randperm(len(self.dataset), generator=generator).tolist()
        return list(range(len(self.dataset)))

    def __iter__(self) -> Iterator[int]:
        order = self.epoch_order()
        skip, self._skip = self._skip, 0
        rest = order[skip:]
        if self.round_up and rest:
            size = math.ceil(len(rest) / self.world_size) * self.world_size
            repeats = size // len(order) + 1
            rest = (rest + order * repeats)[:size]  # padded with the epoch's first indices
        return iter(rest[self.rank :: self.world_size])
