"""Which parts of a vision-language backbone train: one structured config.

A backbone takes ``trainable=dict(vision_tower=False, projector=False,
language_model='frozen', embeddings='none')`` (every key optional) plus ``lora=dict(...)``
settings used when ``language_model='lora'``. :func:`build_trainable` validates it once
(errors name the key and the allowed values) and returns a :class:`TrainableParts`;
:func:`apply_trainable` switches ``requires_grad`` on the named modules. Any backbone
(LLaVA, Qwen2.5-VL, ...) reuses both.

The flags of lisakit <= 0.x (``freeze_vision_tower``, ``freeze_projector``,
``freeze_language_model``, ``train_seg_token_rows``, ``train_embeddings``) are still
accepted with a ``FutureWarning`` and mapped onto this config (they override the keys
they correspond to).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from torch import nn

#: ``trainable.language_model`` values: frozen, LoRA adapters on a frozen base, all of it.
LM_FROZEN, LM_LORA, LM_FULL = 'frozen', 'lora', 'full'
LANGUAGE_MODEL_MODES = (LM_FROZEN, LM_LORA, LM_FULL)
#: ``trainable.embeddings`` values: none, the ``<SEG>`` rows only (peft trainable
#: tokens), the whole input embeddings and LM head (LISA's choice).
EMB_NONE, EMB_SEG_ROWS, EMB_ALL = 'none', 'seg_rows', 'all'
EMBEDDING_MODES = (EMB_NONE, EMB_SEG_ROWS, EMB_ALL)
#: Boolean keys: train the vision tower / the multimodal projector.
BOOL_KEYS = ('vision_tower', 'projector')
TRAINABLE_KEYS = (*BOOL_KEYS, 'language_model', 'embeddings')
#: Deprecated flags and the ``trainable`` key each one maps to.
LEGACY_FLAGS = {
    'freeze_vision_tower': 'vision_tower',
    'freeze_projector': 'projector',
    'freeze_language_model': 'language_model',
    'train_seg_token_rows': 'embeddings',
    'train_embeddings': 'embeddings',
}
#: The deprecated ``model.backbone`` keys, by the current key that replaces them (a deprecated
#: key left next to its replacement overrides it when the backbone is built).
DEPRECATED_BACKBONE_KEYS = {
    'processor.tokenizer': ('tokenizer',),
    'trainable': tuple(LEGACY_FLAGS),
}


def drop_deprecated_keys(
    backbone: dict, replaced: Sequence[str] = tuple(DEPRECATED_BACKBONE_KEYS)
) -> None:
    """Remove from a backbone config dict the deprecated keys of what a caller rewrites.

    Args:
        backbone: The ``model.backbone`` dict (changed in place).
        replaced: Keys of :data:`DEPRECATED_BACKBONE_KEYS` the caller sets itself, whose
            deprecated spellings would otherwise override the new values.
    """
    for key in replaced:
        for old in DEPRECATED_BACKBONE_KEYS[key]:
            backbone.pop(old, None)


@dataclass(frozen=True)
class TrainableParts:
    """The validated ``trainable`` config of a backbone (everything else stays frozen)."""

    vision_tower: bool = False
    projector: bool = False
    language_model: str = LM_FROZEN
    embeddings: str = EMB_NONE

    @property
    def lora(self) -> bool:
        """LoRA adapters on the (frozen) language model."""
        return self.language_model == LM_LORA

    @property
    def seg_rows(self) -> bool:
        """Only the ``<SEG>`` rows of the input embeddings and LM head train."""
        return self.embeddings == EMB_SEG_ROWS


def _check_keys(trainable: dict) -> None:
    unknown = sorted(set(trainable) - set(TRAINABLE_KEYS))
    if unknown:
        raise ValueError(
            f'Unknown model.backbone.trainable keys {unknown}; expected {list(TRAINABLE_KEYS)}.'
        )
    for key in BOOL_KEYS:
        if not isinstance(trainable.get(key, False), bool):
            raise TypeError(
                f'model.backbone.trainable.{key}={trainable[key]!r}; expected True or False.'
            )
    for key, modes in (('language_model', LANGUAGE_MODEL_MODES), ('embeddings', EMBEDDING_MODES)):
        if key in trainable and trainable[key] not in modes:
            raise ValueError(
                f'model.backbone.trainable.{key}={trainable[key]!r}; expected one of {modes}.'
            )


def map_legacy_flags(trainable: dict, flags: dict, lora: Optional[dict]) -> dict:
    """``trainable`` with the deprecated ``flags`` applied (a ``FutureWarning`` names them).

    Raises:
        TypeError: For a keyword that is neither a backbone argument nor a legacy flag.
        ValueError: For ``train_seg_token_rows=True`` with ``train_embeddings=True``.
    """
    unknown = sorted(set(flags) - set(LEGACY_FLAGS))
    if unknown:
        raise TypeError(f'Unexpected model.backbone arguments {unknown}.')
    if not flags:
        return trainable
    warnings.warn(
        f'model.backbone {sorted(flags)} are deprecated; use model.backbone.trainable='
        "dict(vision_tower=bool, projector=bool, language_model='frozen'|'lora'|'full', "
        "embeddings='none'|'seg_rows'|'all') (see docs/config.md).",
        FutureWarning,
        stacklevel=3,
    )
    out = dict(trainable)
    for flag in ('freeze_vision_tower', 'freeze_projector'):
        if flag in flags:
            out[LEGACY_FLAGS[flag]] = not flags[flag]
    if 'freeze_language_model' in flags:
        frozen = LM_LORA if lora is not None else LM_FROZEN
        out['language_model'] = frozen if flags['freeze_language_model'] else LM_FULL
    if flags.get('train_seg_token_rows') and flags.get('train_embeddings'):
        raise ValueError(
            'Set either train_seg_token_rows (only the <SEG> rows) or train_embeddings '
            "(the whole matrices), not both; use trainable.embeddings='seg_rows' or 'all'."
        )
    for flag, mode in (('train_seg_token_rows', EMB_SEG_ROWS), ('train_embeddings', EMB_ALL)):
        if flags.get(flag):
            out['embeddings'] = mode
        elif flag in flags and out.get('embeddings') == mode:
            out['embeddings'] = EMB_NONE
    return out


def build_trainable(
    trainable: Optional[dict],
    lora: Optional[dict] = None,
    quantization: Optional[dict] = None,
    **legacy_flags,
) -> TrainableParts:
    """Validate a backbone's ``trainable`` config against its ``lora`` / ``quantization``.

    Args:
        trainable: ``None`` (all frozen) or a dict with ``vision_tower`` / ``projector``
            (bool), ``language_model`` (``'frozen'``, ``'lora'``, ``'full'``) and
            ``embeddings`` (``'none'``, ``'seg_rows'``, ``'all'``).
        lora: LoRA settings (used with ``language_model='lora'``; ``None``: defaults).
        quantization: The backbone's quantization dict, or ``None``.
        **legacy_flags: Deprecated boolean flags (see :data:`LEGACY_FLAGS`).

    Raises:
        ValueError: For an unknown key or value, or clashing settings.
    """
    trainable = dict(trainable or {})
    _check_keys(trainable)
    trainable = map_legacy_flags(trainable, legacy_flags, lora)
    parts = TrainableParts(**trainable)
    if lora is not None and not parts.lora:
        raise ValueError(
            f'model.backbone.lora is set but model.backbone.trainable.language_model='
            f"{parts.language_model!r}: set language_model='lora', or lora=None."
        )
    if quantization is not None and parts.language_model == LM_FULL:
        raise ValueError(
            "A quantized language model cannot train in full (trainable.language_model='full'); "
            "use language_model='lora' or quantization=None."
        )
    if parts.language_model == LM_FULL and parts.embeddings != EMB_NONE:
        raise ValueError(
            "trainable.language_model='full' already trains the input embeddings and the LM "
            f"head; set trainable.embeddings='none' (got {parts.embeddings!r})."
        )
    return parts


def _set(modules: Iterable[nn.Module], flag: bool) -> None:
    for module in modules:
        module.requires_grad_(flag)


def apply_trainable(
    parts: TrainableParts,
    vision_tower: nn.Module,
    projector: nn.Module,
    language_model: Iterable[nn.Module],
    embeddings: Iterable[nn.Module],
) -> None:
    """Make the configured parts trainable; call after freezing the model and adding
    the adapters (LoRA / ``<SEG>`` rows are already trainable through peft).

    Args:
        parts: From :func:`build_trainable`.
        vision_tower: The vision encoder.
        projector: The vision-to-language projector (merger).
        language_model: Modules of the whole LLM (decoder with its embeddings, LM head).
        embeddings: The input embeddings and the LM head.
    """
    vision_tower.requires_grad_(parts.vision_tower)
    projector.requires_grad_(parts.projector)
    if parts.language_model == LM_FULL:
        _set(language_model, True)
    if parts.embeddings == EMB_ALL:
        _set(embeddings, True)
