"""Build a backbone's processor from its ``processor`` config and its model config's facts."""

from __future__ import annotations

import warnings
from typing import Any, Optional

from lisakit.registry import PROCESSORS

from .base import BaseVLProcessor


def processor_config(
    processor: Optional[dict],
    default_type: str,
    tokenizer: Any = None,
    pretrained: Optional[str] = None,
    owner: str = 'model.backbone',
) -> dict:
    """The processor config of a backbone: ``processor`` with its ``type`` defaulted and
    its ``tokenizer`` defaulted to the deprecated top-level ``tokenizer`` (with a
    ``FutureWarning``), else to the ``pretrained`` folder.

    Raises:
        ValueError: If the two tokenizer settings disagree, or none is given.
    """
    cfg = dict(processor or {})
    cfg.setdefault('type', default_type)
    if tokenizer is not None:
        warnings.warn(
            f'{owner}.tokenizer is deprecated: set {owner}.processor.tokenizer (the processor '
            'owns the tokenizer, the chat template and the image preprocessing).',
            FutureWarning,
            stacklevel=3,
        )
        if cfg.get('tokenizer') not in (None, tokenizer):
            raise ValueError(
                f'{owner}.tokenizer={tokenizer!r} and {owner}.processor.tokenizer='
                f'{cfg["tokenizer"]!r} disagree; keep only {owner}.processor.tokenizer.'
            )
        cfg['tokenizer'] = tokenizer
    if cfg.get('tokenizer') is None:
        if pretrained is None:
            raise ValueError(
                f'{owner}.processor.tokenizer is not set and there is no {owner}.pretrained '
                'folder to load it from; set processor=dict(tokenizer=...) (e.g. '
                "dict(type='WordTokenizer') or a local folder)."
            )
        cfg['tokenizer'] = pretrained
    return cfg


def fill_facts(cfg: dict, owner: str = 'model.backbone.processor', **facts: Any) -> dict:
    """Set the facts the backbone knows (from its arguments or model config) in ``cfg``.

    ``None`` facts are skipped; a key the user set to another value is an error.

    Raises:
        ValueError: Naming the key, the two values and the fix.
    """
    for key, value in facts.items():
        if value is None:
            continue
        if cfg.get(key) is not None and cfg[key] != value:
            raise ValueError(
                f'{owner}.{key}={cfg[key]!r} but the backbone gives {value!r} (from its model '
                f'config or arguments); delete {owner}.{key} or make the two agree.'
            )
        cfg[key] = value
    return cfg


def build_processor(cfg: dict) -> BaseVLProcessor:
    """Build a processor config (``PROCESSORS``), checking the result's type."""
    processor = PROCESSORS.build(cfg)
    if not isinstance(processor, BaseVLProcessor):
        raise TypeError(
            f'model.backbone.processor type {cfg.get("type")!r} built a '
            f'{type(processor).__name__}; a processor must subclass BaseVLProcessor.'
        )
    return processor
