"""Weighted mixing of several datasets by sample rate (LISA's ``HybridDataset``).

Each index of a :class:`MixedDataset` is one independent, seeded draw: the source
with probability ``rate_k / sum(rates)``, then a uniform index inside it. Because the
choice is a function of ``(seed, index)`` only, the mix is the same in every run,
process and dataloader worker; mmengine's ``DefaultSampler`` splits the indices
between DDP ranks (disjoint, and together one epoch), and :class:`FreshDrawSampler`
moves every epoch to new indices, i.e. new draws, as LISA re-draws every step. The
draw index also seeds the source's own choices (templates, classes, sentences; see
:mod:`lisakit.datasets.draws`), so a sample drawn again is asked anew.
"""

from __future__ import annotations

import copy
import math
from typing import Optional, Sequence, Union

import numpy as np

from lisakit.registry import DATASETS

from .draws import mixed_draw


@DATASETS.register_module()
class MixedDataset:
    """Draw samples from several datasets at given rates.

    Args:
        datasets: Dataset configs (or built datasets), each with its own pipeline.
            A ``MixedDataset`` with equal rates is a uniform pick among datasets,
            as LISA does inside its semantic-seg and refer-seg groups.
        sample_rates: Relative rate of each dataset (LISA: ``[9, 3, 3, 1]`` for
            sem-seg, refer-seg, VQA, ReasonSeg); equal rates if None.
        num_samples: Draws per epoch (the dataset length; LISA: batch size x
            gradient accumulation x steps per epoch x GPUs); the sum of the source
            lengths if None.
        seed: Seed of the draws; the same seed gives the same sequence.

    Any index ``i >= 0`` is a valid draw, also past ``num_samples``
    (:class:`FreshDrawSampler` uses that to draw anew every epoch).
    """

    #: Every index is an independent draw (read by FreshDrawSampler).
    accepts_any_index = True

    def __init__(
        self,
        datasets: Sequence[Union[dict, object]],
        sample_rates: Optional[Sequence[float]] = None,
        num_samples: Optional[int] = None,
        seed: int = 0,
    ) -> None:
        if not datasets:
            raise ValueError('MixedDataset: datasets is empty; give at least one dataset config.')
        rates = [1.0] * len(datasets) if sample_rates is None else [float(r) for r in sample_rates]
        if len(rates) != len(datasets) or not all(math.isfinite(r) and r > 0 for r in rates):
            raise ValueError(
                f'MixedDataset: sample_rates={sample_rates} must be {len(datasets)} positive '
                'numbers, one per dataset.'
            )
        self.datasets = [
            DATASETS.build(copy.deepcopy(d)) if isinstance(d, dict) else d for d in datasets
        ]
        self.lengths = [len(d) for d in self.datasets]
        empty = [type(d).__name__ for d, n in zip(self.datasets, self.lengths) if n == 0]
        if empty:
            raise ValueError(f'MixedDataset: source dataset(s) {empty} hold no sample.')
        self.sample_rates = rates
        self.probs = np.asarray(rates) / sum(rates)
        self._cum = np.cumsum(self.probs)
        self.num_samples = sum(self.lengths) if num_samples is None else int(num_samples)
        if self.num_samples < 1:
            raise ValueError(f'MixedDataset: num_samples={num_samples}; expected >= 1.')
        self.seed = seed

    @property
    def metainfo(self) -> dict:
        """The first source's metainfo."""
        return copy.deepcopy(getattr(self.datasets[0], 'metainfo', {}))

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """Bad samples skipped while loading, over all sources."""
        return [s for d in self.datasets for s in getattr(d, 'skipped', [])]

    def full_init(self) -> None:
        """Fully initialize every source (mmengine calls this before training)."""
        for d in self.datasets:
            if hasattr(d, 'full_init'):
                d.full_init()

    def source_of(self, idx: int) -> tuple[int, int]:
        """``(source position, index inside it)`` of draw ``idx``."""
        if idx < 0:
            raise IndexError(f'MixedDataset index {idx} is negative.')
        rng = np.random.default_rng([self.seed, int(idx)])
        k = min(int(np.searchsorted(self._cum, rng.random(), side='right')), len(self._cum) - 1)
        return k, int(rng.integers(self.lengths[k]))

    def get_data_info(self, idx: int) -> dict:
        """The drawn source item before its pipeline."""
        k, local = self.source_of(idx)
        with mixed_draw(self.seed, idx):  # the source's own choices depend on the draw
            return self.datasets[k].get_data_info(local)

    def __getitem__(self, idx: int):
        k, local = self.source_of(idx)
        with mixed_draw(self.seed, idx):
            return self.datasets[k][local]

    def __len__(self) -> int:
        return self.num_samples
