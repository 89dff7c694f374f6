"""Everything a resume needs beyond mmengine's checkpoint: position, RNG, pending gradients."""

from __future__ import annotations

from typing import Optional

import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop

from lisakit.engine.resume_state import capture_rng_state
from lisakit.registry import HOOKS
from lisakit.utils.checkpoint import check_training_checkpoint

#: Checkpoint key of the resume state.
RESUME_KEY = 'lisakit_resume'
#: Attributes of hooks that keep state across epochs (saved with the checkpoint).
HOOK_ATTRIBUTES = {'EarlyStoppingHook': ('best_score', 'wait_count')}
#: Running sums of the epoch in progress, restored only when resuming inside that epoch
#: (TrainingHistoryHook's per-epoch train means then count the iterations before the kill).
EPOCH_ACCUMULATORS = {'TrainingHistoryHook': ('_sums', '_counts')}


def _plain(value):
    """A dict subclass (defaultdict) as a plain dict, which the safe loader accepts."""
    return dict(value) if isinstance(value, dict) else value


@HOOKS.register_module()
class ResumeStateHook(Hook):
    """Save and restore what an exact resume needs besides weights, optimizer, schedulers.

    Writes ``checkpoint['lisakit_resume']``: the world size, the train loop's data
    position (data epoch, samples consumed over all ranks), the RNG states (Python,
    NumPy, torch, CUDA), the state of hooks that carry it across epochs (those with
    ``state_dict`` / ``load_state_dict`` methods, and mmengine's ``EarlyStoppingHook``
    patience), and, when the checkpoint falls inside a gradient-accumulation window
    on one process, the gradients accumulated so far. On ``--resume`` it hands the
    position and RNG states to lisakit's train loops, which continue there.

    lisakit's runners add this hook themselves; configs need not list it. Under
    several processes a checkpoint inside an accumulation window drops the partial
    window's gradients (each rank holds its own; a warning says so).
    """

    priority = 'LOWEST'

    def __init__(self) -> None:
        self._loaded: Optional[dict] = None
        self._epoch_hooks: Optional[dict] = None
        self._warned = False

    @staticmethod
    def _model(runner) -> torch.nn.Module:
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    @staticmethod
    def _stateful_hooks(runner) -> dict:
        known = {**HOOK_ATTRIBUTES, **EPOCH_ACCUMULATORS}
        return {
            type(hook).__name__: hook
            for hook in runner.hooks
            if callable(getattr(hook, 'state_dict', None)) or type(hook).__name__ in known
        }

    def _hook_states(self, runner) -> dict:
        out = {}
        for name, hook in self._stateful_hooks(runner).items():
            if callable(getattr(hook, 'state_dict', None)):
                out[name] = hook.state_dict()
                continue
            attrs = HOOK_ATTRIBUTES.get(name, ()) + EPOCH_ACCUMULATORS.get(name, ())
            out[name] = {a: _plain(getattr(hook, a)) for a in attrs if hasattr(hook, a)}
        return out

    def _restore_hooks(self, runner, states: dict, accumulators: bool) -> None:
        """Set saved hook states: ``state_dict`` ones and :data:`HOOK_ATTRIBUTES`, or
        (``accumulators``) the :data:`EPOCH_ACCUMULATORS` of the epoch in progress."""
        for name, hook in self._stateful_hooks(runner).items():
            saved = states.get(name)
            if saved is None:
                continue
            if not accumulators and callable(getattr(hook, 'load_state_dict', None)):
                hook.load_state_dict(saved)
                continue
            table = EPOCH_ACCUMULATORS if accumulators else HOOK_ATTRIBUTES
            for attr in table.get(name, ()):
                current = getattr(hook, attr, None)
                if attr in saved and isinstance(current, dict):
                    current.clear()  # keeps the hook's own dict type (defaultdict)
                    current.update(saved[attr])
                elif attr in saved:
                    setattr(hook, attr, saved[attr])

    def _pending_grads(self, runner) -> Optional[dict]:
        """Gradients of an unfinished accumulation window (one process only)."""
        wrapper = runner.optim_wrapper
        counts = getattr(wrapper, '_accumulative_counts', 1)
        if counts == 1 or getattr(wrapper, '_inner_count', 0) % counts == 0:
            return None
        if get_world_size() > 1:
            if not self._warned:
                print_log(
                    'Checkpoint inside a gradient-accumulation window on several processes: '
                    "the window's partial gradients are not saved; a resume from it "
                    'restarts the window.',
                    logger='current',
                    level=30,
                )
                self._warned = True
            return None
        params = self._model(runner).named_parameters()
        return {k: p.grad.detach().clone() for k, p in params if p.grad is not None}

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        loop = getattr(runner, '_train_loop', None)
        if not hasattr(loop, 'position'):
            return  # not a lisakit train loop (or not training)
        checkpoint[RESUME_KEY] = dict(
            version=1,
            world_size=get_world_size(),
            position=loop.position(),
            rng=capture_rng_state(),
            hooks=self._hook_states(runner),
            grads=self._pending_grads(runner),
        )

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        resuming = getattr(runner, '_resuming', None)
        if resuming is not None:
            check_training_checkpoint(checkpoint, resuming)
        self._loaded = checkpoint.get(RESUME_KEY)
        grads = (self._loaded or {}).get('grads')
        if grads and get_world_size() == 1:
            for name, param in self._model(runner).named_parameters():
                if name in grads:
                    param.grad = grads[name].to(param.device, param.dtype)
            print_log(
                f'Restored the gradients of the unfinished accumulation window ({len(grads)} '
                'tensors): the window goes on as if never interrupted.',
                logger='current',
            )

    def after_val_epoch(self, runner, metrics=None) -> None:
        """Write the checkpoints that waited for validation, now that every other hook
        (early stopping included) has updated its state."""
        for hook in runner.hooks:
            if hook is not self and callable(getattr(hook, 'save_pending', None)):
                hook.save_pending(runner)

    def before_train(self, runner) -> None:
        if self._loaded is None or not runner._resume:
            return
        state, self._loaded = self._loaded, None
        self._restore_hooks(runner, state['hooks'], accumulators=False)
        position = state['position']
        inside = position['samples'] > 0 and position['data_epoch'] == runner.epoch
        if inside and isinstance(runner.train_loop, EpochBasedTrainLoop):
            self._epoch_hooks = state['hooks']
        if hasattr(runner.train_loop, 'set_resume_state'):
            runner.train_loop.set_resume_state(state)

    def before_train_epoch(self, runner) -> None:
        """Resuming inside an epoch: give the hooks their sums of its first iterations
        (after their own ``before_train_epoch`` reset them)."""
        states, self._epoch_hooks = self._epoch_hooks, None
        if states is not None:
            self._restore_hooks(runner, states, accumulators=True)
