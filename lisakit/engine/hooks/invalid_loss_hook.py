"""Stop on (or skip) a NaN / Inf loss before it reaches the weights."""

from __future__ import annotations

from typing import Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from lisakit.registry import HOOKS

#: What the hook does with an invalid loss.
ACTIONS = ('stop', 'skip')
#: Sample identifiers reported for the batch of an invalid loss.
SAMPLE_KEYS = ('sample_idx', 'img_path')
#: Samples named in the message at most.
MAX_SAMPLES_SHOWN = 16


class InvalidLossError(FloatingPointError):
    """Training stopped on a NaN / Inf loss (the message says where and on what)."""


@HOOKS.register_module()
class InvalidLossHook(Hook):
    """Check every training loss before the optimizer uses it (mmdet's
    ``CheckInvalidLossHook`` checks after the step, when the weights are already NaN).

    ``action='stop'`` (default) raises :class:`InvalidLossError` naming the iteration,
    the epoch, every loss term and the sample ids of the batch; nothing of that step
    reaches the weights, and no checkpoint is written from it. ``action='skip'`` skips
    the step instead: the backward pass still runs (DDP ranks stay in step), then the
    gradients of the accumulation window are dropped and the optimizer does not step;
    each skip is logged and counted (``skipped_steps`` in the message hub, saved in
    checkpoints). With several processes, a loss invalid on any rank counts for all.

    Args:
        action: ``'stop'`` or ``'skip'``.
        max_skips: With ``'skip'``, stop anyway after this many skipped steps
            (``None``: never).
    """

    priority = 'VERY_HIGH'

    def __init__(self, action: str = 'stop', max_skips: Optional[int] = None) -> None:
        if action not in ACTIONS:
            raise ValueError(f'InvalidLossHook: action={action!r}; expected one of {ACTIONS}.')
        self.action, self.max_skips = action, max_skips
        self._batch = None
        self._losses: dict = {}

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner) -> None:
        model, wrapper = self._model(runner), runner.optim_wrapper
        parse_losses, update_params = model.parse_losses, wrapper.update_params

        def parse_and_keep(losses):
            parsed, log_vars = parse_losses(losses)
            self._losses = dict(log_vars)
            return parsed, log_vars

        def checked_update(loss, *args, **kwargs):  # DeepSpeed's takes the loss only
            if self._finite_everywhere(loss):
                return update_params(loss, *args, **kwargs)
            return self._on_invalid(runner, loss)

        model.parse_losses = parse_and_keep  # instance attributes shadow the methods
        wrapper.update_params = checked_update

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._batch = data_batch

    @staticmethod
    def _finite_everywhere(loss: torch.Tensor) -> bool:
        bad = (~torch.isfinite(loss.detach())).any().float().reshape(1)
        if get_world_size() > 1:
            all_reduce(bad, op='sum')
        return not bool(bad.item())

    def _on_invalid(self, runner, loss: torch.Tensor) -> None:
        skipped = runner.message_hub.get_info('skipped_steps', 0)
        message = self.describe(runner, loss)
        if self.action == 'stop' or (self.max_skips is not None and skipped >= self.max_skips):
            why = '' if self.action == 'stop' else f' ({skipped} steps skipped already)'
            raise InvalidLossError(
                f'{message}{why}. Training stopped before this step reached the weights; '
                'lower the learning rate or check these samples, resume with --resume, '
                "or set default_hooks.invalid_loss.action='skip' to skip such steps."
            )
        wrapper = runner.optim_wrapper
        scale = getattr(wrapper, 'scale_loss', lambda value: value)
        wrapper.backward(scale(loss))  # keeps DDP's reduction in step
        wrapper.zero_grad()
        runner.message_hub.update_info('skipped_steps', skipped + 1)
        runner.logger.warning(f'{message}: step skipped ({skipped + 1} so far).')

    def describe(self, runner, loss: torch.Tensor) -> str:
        """Where the invalid loss happened: iteration, epoch, loss terms, sample ids."""
        terms = {k: float(v) for k, v in self._losses.items() if k.startswith('loss')}
        terms = terms or {'loss': float(loss.detach().float().mean())}
        shown = ', '.join(f'{k}={v:.4g}' for k, v in terms.items())
        return (
            f'Invalid loss at iteration {runner.iter + 1} (epoch {runner.epoch + 1}): '
            f'{shown}; batch samples {self._sample_ids()}'
        )

    def _sample_ids(self) -> list:
        samples = self._batch.get('data_samples', []) if isinstance(self._batch, dict) else []
        ids = []
        for sample in list(samples)[:MAX_SAMPLES_SHOWN]:
            meta = getattr(sample, 'metainfo', {})
            ids.append({k: meta[k] for k in SAMPLE_KEYS if k in meta})
        return ids
