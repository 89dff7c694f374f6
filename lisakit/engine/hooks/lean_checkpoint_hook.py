"""Lean checkpoints: save only what trains, check it strictly when loading.

The format itself (which keys, versions, token ids, load checks) is owned by
:mod:`lisakit.utils.checkpoint_format`; this hook applies it at save and load time.
"""

from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn

from lisakit.registry import HOOKS
from lisakit.utils.checkpoint_format import complete_lean_state, make_lean


@HOOKS.register_module()
class LeanCheckpointHook(Hook):
    """Keep only trainable weights in checkpoints; the rest is rebuilt from the config.

    Saving: ``state_dict`` is cut to the trainable parameters (LoRA, ``<SEG>`` rows,
    neck, mask decoder, ...); ``meta['lisakit']`` records the format version, the
    trainable keys, library versions and the tokenizer additions (the config text is
    already in ``meta``). Loading: the trainable keys of the freshly built model must
    match the file's exactly (missing / unexpected keys are reported by name), as must
    the recorded token ids; frozen weights are taken from the built model (its
    pretrained files or its seeded random init). See
    :mod:`lisakit.utils.checkpoint_format`.
    """

    priority = 'VERY_LOW'

    @staticmethod
    def _model(runner) -> nn.Module:
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        make_lean(self._model(runner), checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        complete_lean_state(self._model(runner), checkpoint)
