"""A ``DefaultSampler`` that gives every epoch new draws of a ``MixedDataset``."""

from __future__ import annotations

from typing import Iterator

from lisakit.registry import DATA_SAMPLERS

from .default_sampler import DefaultSampler


@DATA_SAMPLERS.register_module()
class FreshDrawSampler(DefaultSampler):
    """lisakit's ``DefaultSampler`` (mmengine's, resumable) over the epoch's window of draws.

    Epoch ``e`` yields ``e * N + j`` for the indices ``j`` that ``DefaultSampler``
    yields (N = ``len(dataset)``): the same rank split (each rank a disjoint share,
    together the whole epoch), but new draws each epoch, as LISA's ``HybridDataset``
    draws anew every step. Resuming at epoch ``e`` continues with the same draws; a
    resume inside the epoch skips the draws already trained on (:meth:`skip` of
    lisakit's ``DefaultSampler``), so every draw of the epoch is trained on once.

    Args:
        dataset: A dataset whose every index ``>= 0`` is a draw (``MixedDataset``).
        **kwargs: ``shuffle``, ``seed``, ``round_up`` of ``DefaultSampler``.
    """

    def __init__(self, dataset, **kwargs) -> None:
        if not getattr(dataset, 'accepts_any_index', False):
            raise TypeError(
                f'FreshDrawSampler needs a dataset whose every index is a fresh draw '
                f'(MixedDataset), got {type(dataset).__name__}; use DefaultSampler.'
            )
        super().__init__(dataset, **kwargs)

    def __iter__(self) -> Iterator[int]:
        offset = self.epoch * len(self.dataset)
        return (offset + i for i in super().__iter__())
