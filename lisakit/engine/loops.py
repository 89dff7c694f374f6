"""mmengine's train loops, resumable inside an epoch (same data order, RNG, position).

mmengine 0.10.7 resumes an ``EpochBasedTrainLoop`` at the start of the saved epoch (a
checkpoint written inside an epoch would repeat its first batches) and an
``IterBasedTrainLoop`` by loading and dropping every batch already trained on (hours
for a long run). These subclasses, registered under the same names in the lisakit
scope, continue at the saved position: the sampler skips the samples already
consumed (lisakit's ``DefaultSampler`` / ``FreshDrawSampler``; other samplers have the
batches fetched and dropped), and the RNG states saved with the checkpoint are
restored where the uninterrupted run had them. The position and RNG states are
written into every checkpoint by :class:`~lisakit.engine.hooks.ResumeStateHook`.
"""

from __future__ import annotations

from typing import Any, Optional

from mmengine.dist import get_world_size
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop as MMEngineEpochBasedTrainLoop
from mmengine.runner import IterBasedTrainLoop as MMEngineIterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator

from lisakit.registry import LOOPS

from .resume_state import restore_rng_state


def global_batch_size(dataloader) -> int:
    """Samples one iteration consumes over all ranks (batch size x world size)."""
    return int(dataloader.batch_size or 1) * get_world_size()


def seek(dataloader, samples: int, world_size: int) -> Any:
    """A fresh iterator over ``dataloader`` that starts ``samples`` into the epoch.

    Uses the sampler's ``skip`` when it has one (no data is loaded); otherwise
    fetches and drops the batches (possible only with the saved world size).

    Raises:
        ValueError: If the sampler cannot skip and the world size changed.
    """
    sampler = getattr(dataloader, 'sampler', None)
    if samples and hasattr(sampler, 'skip'):
        sampler.skip(samples)
        return iter(dataloader)
    iterator = iter(dataloader)
    if not samples:
        return iterator
    if world_size != get_world_size():
        raise ValueError(
            f'Resuming inside an epoch on {get_world_size()} processes from a checkpoint '
            f'written on {world_size} needs a sampler with skip() (lisakit DefaultSampler / '
            f'FreshDrawSampler), got {type(sampler).__name__}; resume on {world_size} '
            'processes or from an epoch checkpoint.'
        )
    batches = samples // global_batch_size(dataloader)
    print_log(f'Fetching and dropping {batches} batches to reach the saved position.', 'current')
    for _ in range(batches):
        next(iterator)
    return iterator


class ResumableLoopMixin:
    """Bookkeeping shared by the two loops: the saved position and pending RNG states."""

    #: (epoch of the data, samples of it consumed over all ranks) at the last iteration.
    data_epoch = 0
    samples_done = 0
    _resume: Optional[dict] = None

    def set_resume_state(self, state: dict) -> None:
        """Continue from ``state`` (written by ``ResumeStateHook``) at the next ``run``."""
        self._resume = state
        self.stop_training = bool(state['position'].get('stop_training', False))

    def position(self) -> dict:
        """Where the data stands, for the checkpoint: data epoch, samples consumed."""
        return dict(
            data_epoch=self.data_epoch, samples=self.samples_done, stop_training=self.stop_training
        )

    def _take_resume(self) -> Optional[dict]:
        state, self._resume = self._resume, None
        return state


@LOOPS.register_module(name='EpochBasedTrainLoop')
class EpochBasedTrainLoop(ResumableLoopMixin, MMEngineEpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop`` that resumes at the saved iteration of an epoch.

    A checkpoint written after iteration ``k`` of epoch ``e`` (the checkpoint hook's
    ``iter_interval``) resumes at iteration ``k + 1`` of epoch ``e`` with the batches,
    sampler state and RNG states the uninterrupted run had there.
    """

    def run_epoch(self) -> None:
        """Iterate one epoch, from the saved position when resuming inside it."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        state = self._take_resume()
        skip = 0
        if state and state['position']['data_epoch'] == self._epoch:
            skip = state['position']['samples']
        self.data_epoch, self.samples_done = self._epoch, skip
        rng_first = state is not None and not skip and self._new_iterator_per_epoch()
        if rng_first:
            restore_rng_state(state['rng'])
        iterator = seek(self.dataloader, skip, state['world_size'] if state else 1)
        if state is not None and not rng_first:
            restore_rng_state(state['rng'])
        start = skip // global_batch_size(self.dataloader)
        if skip:
            print_log(
                f'Resuming epoch {self._epoch + 1} at iteration {start + 1}.', logger='current'
            )
        for idx, data_batch in enumerate(iterator, start=start):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def _new_iterator_per_epoch(self) -> bool:
        """Whether the uninterrupted run made a new iterator (and drew its seed) at the
        start of this epoch: always, except with persistent workers after epoch 1."""
        loader = self.dataloader
        return not (loader.persistent_workers and loader.num_workers > 0 and self._epoch > 0)

    def run_iter(self, idx, data_batch) -> None:
        """One iteration; the position a checkpoint written after it records moves on."""
        self.runner.call_hook('before_train_iter', batch_idx=idx, data_batch=data_batch)
        outputs = self.runner.model.train_step(data_batch, optim_wrapper=self.runner.optim_wrapper)
        self.samples_done += global_batch_size(self.dataloader)
        self.runner.call_hook(
            'after_train_iter', batch_idx=idx, data_batch=data_batch, outputs=outputs
        )
        self._iter += 1


class _CountingInfiniteIterator(_InfiniteDataloaderIterator):
    """mmengine's infinite iterator that counts the batches of the current data epoch."""

    batches = 0

    def __next__(self):
        epoch = self._epoch
        data = super().__next__()
        self.batches = 1 if self._epoch != epoch else self.batches + 1
        return data

    def reset_to(self, epoch: int, samples: int, world_size: int) -> None:
        """Start data epoch ``epoch`` after ``samples`` consumed samples."""
        sampler = getattr(self._dataloader, 'sampler', None)
        if hasattr(sampler, 'set_epoch'):
            sampler.set_epoch(epoch)
        self._epoch = epoch
        self._iterator = seek(self._dataloader, samples, world_size)
        self.batches = samples // global_batch_size(self._dataloader)


@LOOPS.register_module(name='IterBasedTrainLoop')
class IterBasedTrainLoop(ResumableLoopMixin, MMEngineIterBasedTrainLoop):
    """mmengine's ``IterBasedTrainLoop`` that resumes without replaying the data.

    mmengine fetches and drops every batch trained before the checkpoint; this loop
    moves the sampler to the saved data epoch and position instead (from the
    checkpoint's resume state, or from the iteration count for older checkpoints)
    and restores the saved RNG states.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dataloader_iterator = _CountingInfiniteIterator(self.dataloader)

    def position(self) -> dict:
        it = self.dataloader_iterator
        samples = it.batches * global_batch_size(self.dataloader)
        return dict(data_epoch=it._epoch, samples=samples, stop_training=self.stop_training)

    def run(self):
        """Launch training (mmengine's loop, with a seek instead of a data replay)."""
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        state = self._take_resume()
        if self._iter > 0:
            self._seek(state)
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (
                self.runner.val_loop is not None
                and self._iter >= self.val_begin
                and (self._iter % self.val_interval == 0 or self._iter == self._max_iters)
            ):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model

    def _seek(self, state: Optional[dict]) -> None:
        if state is None:  # a checkpoint without resume state: derive it from the count
            epoch, batches = divmod(self._iter, len(self.dataloader))
            position = dict(data_epoch=epoch, samples=batches * global_batch_size(self.dataloader))
            world_size = get_world_size()
        else:
            position, world_size = state['position'], state['world_size']
        print_log(
            f'Resuming at iteration {self._iter + 1}: data epoch {position["data_epoch"]}, '
            f'{position["samples"]} samples into it.',
            logger='current',
        )
        self.dataloader_iterator.reset_to(position['data_epoch'], position['samples'], world_size)
        if state is not None:
            restore_rng_state(state['rng'])
