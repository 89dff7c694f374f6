"""Everything a resume needs beyond mmengine's checkpoint: position, RNG, pending gradients."""

from __future__ import annotations

from typing import Optional

import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from lisakit.engine.resume_state import capture_rng_state
from lisakit.registry import HOOKS
from lisakit.utils.checkpoint import check_training_checkpoint

#: Checkpoint key of the resume state.
RESUME_KEY = 'lisakit_resume'
#: Attributes of mmengine hooks that keep state across epochs (saved with the checkpoint).
HOOK_ATTRIBUTES = {'EarlyStoppingHook': ('best_score', 'wait_count')}


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
        self._warned = False

    @staticmethod
    def _model(runner) -> torch.nn.Module:
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    @staticmethod
    def _stateful_hooks(runner) -> dict:
        return {
            type(hook).__name__: hook
            for hook in runner.hooks
            if callable(getattr(hook, 'state_dict', None)) or type(hook).__name__ in HOOK_ATTRIBUTES
        }

    def _hook_states(self, runner) -> dict:
        out = {}
        for name, hook in self._stateful_hooks(runner).items():
            if callable(getattr(hook, 'state_dict', None)):
                out[name] = hook.state_dict()
            else:
                out[name] = {attr: getattr(hook, attr) for attr in HOOK_ATTRIBUTES[name]}
        return out

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
        for name, hook in self._stateful_hooks(runner).items():
            saved = self._loaded['hooks'].get(name)
            if saved is None:
                continue
            if callable(getattr(hook, 'load_state_dict', None)):
                hook.load_state_dict(saved)
            else:
                for attr, value in saved.items():
                    setattr(hook, attr, value)
        if hasattr(runner.train_loop, 'set_resume_state'):
            runner.train_loop.set_resume_state(self._loaded)
        self._loaded = None
