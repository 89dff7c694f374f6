"""mmengine's CheckpointHook made crash-safe; optimizer and scheduler state in best checkpoints."""

from __future__ import annotations

import glob
import math
import os
from typing import Optional

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper

from lisakit.registry import HOOKS
from lisakit.utils.checkpoint import LAST_CHECKPOINT, CheckpointError, checkpoint_problem
from lisakit.utils.io import write_text_atomic

#: Message-hub key of the periodic checkpoints kept (file names, oldest first).
KEEP_KEY = 'lisakit_keep_ckpts'
#: Name of the checkpoints written inside an epoch (``iter_interval``).
ITER_FILENAME = 'iter_{}.pth'


@HOOKS.register_module()
class FullBestCheckpointHook(CheckpointHook):
    """``CheckpointHook`` that survives a kill at any point, and whose best files resume.

    Every argument of mmengine's ``CheckpointHook`` keeps its meaning (``interval``,
    ``by_epoch``, ``save_best``, ``rule``, ``max_keep_ckpts``, ...). Changed:

    * Best checkpoints (``best_*.pth``) also hold the optimizer and parameter-scheduler
      state, so a best-only run (``interval=-1, save_last=False``) resumes exactly.
      A best score that is NaN / Inf, or weights that are, never make a best file.
    * When validation follows a periodic save, the save waits until validation (and
      the hooks after it, e.g. early stopping) ran: a kill during validation then
      repeats the epoch's validation on resume instead of skipping it.
    * Old checkpoints (``max_keep_ckpts``) and the previous best file are deleted only
      after the new file is written and checked, and ``last_checkpoint`` is written
      atomically: a kill never leaves the work dir without an intact checkpoint.
    * A failed write (disk full, read-only work dir) raises :class:`CheckpointError`
      naming the file, the reason and the intact checkpoint to resume from.
    * ``iter_interval=N`` (epoch-based training) also saves ``iter_{i}.pth`` every N
      iterations inside an epoch; with lisakit's train loops a resume from it continues
      at the next iteration, so a kill loses at most N iterations.
    * Half-written temporary files left by a kill (``.tmp-*``) are removed at start.

    Args:
        iter_interval: Save every this many iterations inside epochs (epoch-based
            runs only); -1 (default): only at epoch ends.
        **kwargs: Arguments of mmengine's ``CheckpointHook``.
    """

    def __init__(self, *args, iter_interval: int = -1, **kwargs) -> None:
        keep = kwargs.pop('max_keep_ckpts', -1)
        super().__init__(*args, **kwargs)  # mmengine's pruning off: this class prunes
        self.keep = keep
        self.iter_interval = iter_interval
        self._pending: Optional[tuple] = None  # (step, meta, filename) waiting for val

    # ---------------------------------------------------------------- scheduling
    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process():
            for tmp in glob.glob(os.path.join(self.out_dir, '.tmp-*')):
                runner.logger.warning(f'Removing {tmp}, a file half-written when a run died.')
                os.remove(tmp)

    def _val_follows(self, runner, step: int) -> bool:
        """Whether validation runs right after training step ``step`` (epoch or iter)."""
        loop = runner.train_loop
        if runner.val_loop is None or step < loop.val_begin:
            return False
        last = loop.max_epochs if self.by_epoch else loop.max_iters
        return step % loop.val_interval == 0 or step == last

    def _save_checkpoint(self, runner) -> None:
        if self.by_epoch:
            step = runner.epoch + 1
            meta = dict(epoch=step, iter=runner.iter)
        else:
            step = runner.iter + 1
            meta = dict(epoch=runner.epoch, iter=step)
        if self._val_follows(runner, step):
            self._pending = (step, meta, self.filename_tmpl.format(step))
            return
        self._save_checkpoint_with_step(runner, step, meta)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self.save_pending(runner)
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
        if not self.by_epoch or self.iter_interval <= 0:
            return
        done = runner.iter + 1
        epoch_end = batch_idx + 1 >= len(runner.train_dataloader)
        epoch_save = self.every_n_epochs(runner, self.interval, self.save_begin) or (
            self.save_last and self.is_last_train_epoch(runner)
        )
        if done % self.iter_interval == 0 and not (epoch_end and epoch_save):
            meta = dict(epoch=runner.epoch, iter=done)
            self._save_checkpoint_with_step(runner, done, meta, ITER_FILENAME.format(done))

    def before_train_epoch(self, runner) -> None:
        self.save_pending(runner)

    def after_train(self, runner) -> None:
        self.save_pending(runner)
        super().after_train(runner)

    def after_val_epoch(self, runner, metrics) -> None:
        if self._pending is None:
            return super().after_val_epoch(runner, metrics)
        last, self.last_ckpt = self.last_ckpt, None  # no re-save of the last file by
        try:  # mmengine after a new best: the pending save below writes it
            super().after_val_epoch(runner, metrics)
        finally:
            self.last_ckpt = last

    def save_pending(self, runner) -> None:
        """Write the periodic checkpoint that waited for validation (ResumeStateHook
        calls this after every other hook's ``after_val_epoch``)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._save_checkpoint_with_step(runner, *pending)

    # ---------------------------------------------------------------- writing
    def _save_checkpoint_with_step(self, runner, step, meta, filename=None) -> None:
        """Write one periodic checkpoint, then ``last_checkpoint``, then prune."""
        filename = filename or self.filename_tmpl.format(step)
        hub = runner.message_hub
        kept = [f for f in hub.get_info(KEEP_KEY, []) if f != filename] + [filename]
        if self.keep > 0:
            kept = kept[-self.keep :]
        previous = (hub.get_info(KEEP_KEY, []), self.last_ckpt)
        hub.update_info(KEEP_KEY, kept)  # the checkpoint records what it keeps
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        hub.update_info('last_ckpt', self.last_ckpt)
        try:
            self._write(runner, filename, meta, self.save_optimizer, self.save_param_scheduler)
        except CheckpointError:
            hub.update_info(KEEP_KEY, previous[0])
            self.last_ckpt = previous[1]
            hub.update_info('last_ckpt', previous[1])
            raise
        if not is_main_process():
            return
        write_text_atomic(self.last_ckpt, os.path.join(runner.work_dir, LAST_CHECKPOINT))
        for old in previous[0]:
            if old not in kept:
                self._remove(runner, self.file_backend.join_path(self.out_dir, old))

    def _write(self, runner, filename: str, meta: dict, optimizer: bool, scheduler: bool) -> None:
        """``runner.save_checkpoint``; check the file; failures as ``CheckpointError``."""
        path = self.file_backend.join_path(self.out_dir, filename)
        try:
            runner.save_checkpoint(
                self.out_dir,
                filename,
                self.file_client_args,
                save_optimizer=optimizer,
                save_param_scheduler=scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args,
            )
        except OSError as err:
            raise CheckpointError(
                f'Could not write checkpoint {path!r}: {err}. The files already in '
                f'{self.out_dir!r} are intact ({LAST_CHECKPOINT} names the latest; resume '
                'with `tools/train.py CONFIG --resume`). Free disk space or give a writable '
                '--work-dir.'
            ) from err
        problem = checkpoint_problem(path) if is_main_process() else None
        if problem is not None and problem != 'does not exist':  # remote backends
            raise CheckpointError(f'Checkpoint {path!r} {problem} right after writing it.')

    def _remove(self, runner, path: str) -> None:
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # DeepSpeed checkpoints are folders
            self.file_backend.rmtree(path)

    # ---------------------------------------------------------------- best
    def _save_best_checkpoint(self, runner, metrics) -> None:
        """mmengine's best-checkpoint logic, with optimizer / scheduler state, no NaN
        bests, and the previous best removed only after the new one is written."""
        if not self.save_best:
            return
        bad = {k: v for k, v in metrics.items() if k in self.key_indicators and not _finite(v)}
        if bad or not _weights_finite(runner):
            what = f'the score is not finite ({bad})' if bad else 'the weights hold NaN / Inf'
            runner.logger.warning(f'No best checkpoint after this validation: {what}.')
            return
        save, removed = runner.save_checkpoint, []
        backend = self.file_backend

        def save_with_state(out_dir, filename, *args, **kwargs):
            kwargs.update(save_optimizer=True, save_param_scheduler=True)
            try:
                return save(out_dir, filename, *args, **kwargs)
            except OSError as err:
                raise CheckpointError(
                    f'Could not write the best checkpoint {filename!r} in {out_dir!r}: {err}. '
                    'Free disk space or give a writable --work-dir.'
                ) from err

        runner.save_checkpoint = save_with_state  # shadows the bound method for this call
        backend.remove = backend.rmtree = removed.append  # deferred until the new one is written
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            del runner.save_checkpoint, backend.remove, backend.rmtree
        paths = getattr(self, 'best_ckpt_path_dict', {}).values()
        current = {getattr(self, 'best_ckpt_path', None), *paths}
        for path in removed:
            if path not in current:
                self._remove(runner, path)


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True  # not a number: not ours to judge


def _weights_finite(runner) -> bool:
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    return all(bool(torch.isfinite(p).all()) for p in model.parameters() if p.requires_grad)
