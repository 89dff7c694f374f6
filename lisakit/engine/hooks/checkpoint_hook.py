"""mmengine's CheckpointHook, with optimizer and scheduler state in best checkpoints."""

from __future__ import annotations

from mmengine.hooks import CheckpointHook

from lisakit.registry import HOOKS


@HOOKS.register_module()
class FullBestCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose ``best_*.pth`` files can also resume training.

    mmengine saves best checkpoints with weights and message hub (metrics) only. This
    subclass keeps every behaviour and argument of ``CheckpointHook`` (``save_best``,
    ``rule``, ``interval``, ``max_keep_ckpts``, ...) and adds the optimizer and
    parameter-scheduler state to the best checkpoints, so a best-only run
    (``interval=-1, save_last=False``) still resumes exactly.
    """

    def _save_best_checkpoint(self, runner, metrics) -> None:
        save = runner.save_checkpoint

        def save_with_state(*args, **kwargs):
            kwargs.update(save_optimizer=True, save_param_scheduler=True)
            return save(*args, **kwargs)

        runner.save_checkpoint = save_with_state  # shadows the bound method for this call
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            del runner.save_checkpoint
