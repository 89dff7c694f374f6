"""lisakit's runners: crash-safe resume; mmengine 0.10.7 ``FlexibleRunner`` fixes."""

from __future__ import annotations

import importlib
from typing import Any, Optional

from mmengine.runner import FlexibleRunner as MMEngineFlexibleRunner
from mmengine.runner import Runner as MMEngineRunner

from lisakit.registry import RUNNERS
from lisakit.utils.checkpoint import find_resume_checkpoint, verify_checkpoint

#: Checkpoint ``meta`` keys that say where training resumes.
STEP_KEYS = ('epoch', 'iter')
#: Hook every lisakit runner adds (position, RNG and accumulation state in checkpoints).
RESUME_HOOK = 'ResumeStateHook'


def _hook_type(hook) -> str:
    kind = hook.get('type') if isinstance(hook, dict) else type(hook)
    return kind if isinstance(kind, str) else getattr(kind, '__name__', '')


class CrashSafeRunnerMixin:
    """What lisakit adds to mmengine's runners for crash-safe training.

    * :class:`~lisakit.engine.hooks.ResumeStateHook` is always registered, so every
      checkpoint carries the data position, RNG states and pending gradients.
    * ``--resume`` without a path takes the newest *intact* checkpoint of the work dir
      (``last_checkpoint`` first, then every ``*.pth`` newest first), skipping missing,
      empty, truncated or foreign files with a warning naming them; with a path, the
      file is checked first and a broken one is reported with its path and the fix.
    """

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        custom = list(custom_hooks or [])
        if not any(_hook_type(h) == RESUME_HOOK for h in custom):
            custom.append(dict(type=RESUME_HOOK))
        super().register_hooks(default_hooks, custom)

    def load_or_resume(self) -> None:
        """Resume from the given or the newest intact checkpoint; else load as mmengine."""
        if self._has_loaded or not self._resume:
            return super().load_or_resume()
        path = self._resume if isinstance(self._resume, str) else self._load_from
        if path is None:
            path = find_resume_checkpoint(self.work_dir, self.logger)
            if path is None:
                self.logger.info(
                    f'No intact checkpoint in {self.work_dir}: training from the start.'
                )
                return None
            self.logger.info(f'Auto resumed from the latest intact checkpoint {path}.')
        else:
            verify_checkpoint(path)
        self._resuming = path
        self.resume(path)
        self._has_loaded = True


@RUNNERS.register_module(name='Runner')
class Runner(CrashSafeRunnerMixin, MMEngineRunner):
    """mmengine's ``Runner`` with :class:`CrashSafeRunnerMixin` (the default runner)."""


@RUNNERS.register_module(name='FlexibleRunner')
class FlexibleRunner(CrashSafeRunnerMixin, MMEngineFlexibleRunner):
    """``FlexibleRunner`` (DDP / FSDP / DeepSpeed strategies) that resumes at the right step.

    mmengine 0.10.7's ``FlexibleRunner.save_checkpoint`` overwrites the ``epoch`` /
    ``iter`` a caller passes in ``meta`` (``Runner`` keeps them). ``CheckpointHook``
    re-saves the latest ``epoch_N.pth`` after validation finds a new best score, passing
    the finished epoch; overwritten, it becomes N + 1 and ``--resume`` skips a whole epoch.
    This subclass keeps the ``epoch`` / ``iter`` the caller gave, as ``Runner`` does;
    everything else is mmengine's. Configs select it with ``runner_type='FlexibleRunner'``
    (the lisakit scope finds this class first).
    """

    def save_checkpoint(self, out_dir: str, filename: str, *args: Any, **kwargs: Any) -> None:
        """Save as mmengine does, with ``meta['epoch']`` / ``meta['iter']`` as given."""
        meta: Optional[dict] = kwargs.get('meta')
        given = {key: meta[key] for key in STEP_KEYS if meta and key in meta}
        if not given:
            return super().save_checkpoint(out_dir, filename, *args, **kwargs)
        strategy_save = self.strategy.save_checkpoint

        def save_with_given_step(*s_args: Any, extra_ckpt: dict, **s_kwargs: Any) -> None:
            extra_ckpt['meta'].update(given)
            return strategy_save(*s_args, extra_ckpt=extra_ckpt, **s_kwargs)

        self.strategy.save_checkpoint = save_with_given_step  # shadows it for this call
        try:
            return super().save_checkpoint(out_dir, filename, *args, **kwargs)
        finally:
            del self.strategy.save_checkpoint


#: DeepSpeed optimizers mmengine registers for ``DeepSpeedStrategy`` (module, class names).
#: The 1-bit ones were deleted from DeepSpeed in 2026 (deepspeedai/DeepSpeed#8490).
DEEPSPEED_OPTIMIZERS = (
    ('deepspeed.ops.adam', ('DeepSpeedCPUAdam', 'FusedAdam')),
    ('deepspeed.ops.lamb', ('FusedLamb',)),
    ('deepspeed.runtime.fp16.onebit', ('OnebitAdam', 'OnebitLamb', 'ZeroOneAdam')),
)


def register_deepspeed_optimizers() -> list[str]:
    """Register the DeepSpeed optimizers this DeepSpeed has in mmengine's ``OPTIMIZERS``.

    Replaces mmengine 0.10.7's function of the same name, which imports the 1-bit
    optimizers unconditionally, so ``DeepSpeedStrategy`` fails to build with a current
    DeepSpeed. Optimizers already registered are left alone (building twice works).

    Returns:
        The names registered by this call.
    """
    from mmengine._strategy import deepspeed as mmengine_deepspeed
    from mmengine.registry import OPTIMIZERS

    registered = []
    for module_name, class_names in DEEPSPEED_OPTIMIZERS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in class_names:
            cls = getattr(module, name, None)
            if cls is not None and name not in OPTIMIZERS.module_dict:
                OPTIMIZERS.register_module(module=cls)
                registered.append(name)
    mmengine_deepspeed.register_deepspeed_optimizers = register_deepspeed_optimizers
    return registered
