"""Lean checkpoints: save only what trains, check it strictly when loading."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn

from lisakit.registry import HOOKS

#: Libraries whose versions are recorded in lean checkpoints.
RECORDED_PACKAGES = (
    'lisakit',
    'torch',
    'mmengine',
    'transformers',
    'peft',
    'bitsandbytes',
    'segment-anything',
)


def _versions() -> dict[str, str]:
    out = {}
    for name in RECORDED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = 'not installed'
    return out


def trainable_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the parameters that require grad."""
    return {name for name, p in model.named_parameters() if p.requires_grad}


def check_lean_keys(model: nn.Module, checkpoint: dict) -> bool:
    """Whether ``checkpoint`` is lean; if so, check its keys against ``model``.

    The trainable keys of ``model`` must equal the file's exactly.

    Raises:
        ValueError: Naming the missing / unexpected trainable keys.
    """
    info = checkpoint.get('meta', {}).get('lisakit', {})
    if not info.get('lean'):
        return False
    expected, got = trainable_keys(model), set(checkpoint['state_dict'])
    missing, unexpected = sorted(expected - got), sorted(got - expected)
    if missing or unexpected:
        raise ValueError(
            f'The lean checkpoint does not match the trainable parameters of this config: '
            f'{len(missing)} missing {missing[:5]}, {len(unexpected)} unexpected '
            f'{unexpected[:5]}. Use the config the checkpoint was trained with '
            '(it is stored in checkpoint["meta"]["cfg"]).'
        )
    return True


def complete_lean_state(model: nn.Module, checkpoint: dict) -> None:
    """Check a lean checkpoint and fill in the frozen weights from ``model`` (no-op for a
    full checkpoint), so that mmengine loads a complete state dict."""
    if check_lean_keys(model, checkpoint):
        got = set(checkpoint['state_dict'])
        full = {k: v for k, v in model.state_dict().items() if k not in got}
        checkpoint['state_dict'] = {**full, **checkpoint['state_dict']}


@HOOKS.register_module()
class LeanCheckpointHook(Hook):
    """Keep only trainable weights in checkpoints; the rest is rebuilt from the config.

    Saving: ``state_dict`` is cut to the trainable parameters (LoRA, ``<SEG>`` rows,
    neck, mask decoder, ...); ``meta['lisakit']`` records the trainable keys, library
    versions and the tokenizer additions (the config text is already in ``meta``).
    Loading: the trainable keys of the freshly built model must match the file's
    exactly (missing / unexpected keys are reported by name); frozen weights are
    taken from the built model (its pretrained files or its seeded random init).
    """

    priority = 'VERY_LOW'

    @staticmethod
    def _model(runner) -> nn.Module:
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = self._model(runner)
        keys = trainable_keys(model)
        checkpoint['state_dict'] = {k: v for k, v in checkpoint['state_dict'].items() if k in keys}
        backbone = getattr(model, 'backbone', None)
        tokens = {}
        if backbone is not None and hasattr(backbone, 'seg_token_id'):
            tokens = {
                'seg_token_id': backbone.seg_token_id,
                'image_token_id': backbone.image_token_id,
                'vocab_size': len(backbone.tokenizer),
            }
        checkpoint.setdefault('meta', {})['lisakit'] = dict(
            lean=True, trainable_keys=sorted(keys), versions=_versions(), tokens=tokens
        )

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        complete_lean_state(self._model(runner), checkpoint)
