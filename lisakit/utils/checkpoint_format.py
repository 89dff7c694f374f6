"""The lisakit checkpoint format: one owner for what a lean checkpoint holds and how it is
checked when it loads.

A *lean* checkpoint is an mmengine checkpoint whose ``state_dict`` holds only the
trainable parameters (LoRA, ``<SEG>`` rows, neck, mask decoder, ...); the frozen rest is
rebuilt from the config. Its ``meta['lisakit']`` (:data:`META_KEY`) records::

    format_version  int, :data:`FORMAT_VERSION` (absent in files written before it: 1)
    lean            True
    trainable_keys  sorted state-dict keys of the trainable parameters
    versions        {package: version} of :data:`RECORDED_PACKAGES`
    tokens          {seg_token_id, image_token_id, vocab_size} of the backbone's tokenizer
    converted_from  (converted checkpoints only) the source folder

The same token ids and versions go into export folders (:func:`export_info`).
Hooks (:class:`~lisakit.engine.hooks.LeanCheckpointHook`), converters, exports and
:mod:`lisakit.apis.inference` call this module; it imports none of them (it sits in
``utils``, the lowest layer: see docs/architecture.md).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any, Optional

from torch import nn

from lisakit.utils.checkpoint import CheckpointError

#: Key of lisakit's record inside ``checkpoint['meta']``.
META_KEY = 'lisakit'
#: Version of the lean-checkpoint layout written by this code.
FORMAT_VERSION = 1
#: Version assumed for files that do not record one (written before it was recorded).
LEGACY_FORMAT_VERSION = 1
#: Libraries whose versions are recorded in lean checkpoints and export folders.
RECORDED_PACKAGES = (
    'lisakit',
    'torch',
    'mmengine',
    'transformers',
    'peft',
    'bitsandbytes',
    'segment-anything',
)
#: Token facts recorded from the backbone (attribute name -> key in ``tokens``).
TOKEN_KEYS = ('seg_token_id', 'image_token_id', 'vocab_size')
#: How many key names an error message lists.
MAX_LISTED = 5


def library_versions() -> dict[str, str]:
    """Installed versions of :data:`RECORDED_PACKAGES` (``'not installed'`` if absent)."""
    out = {}
    for name in RECORDED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = 'not installed'
    return out


def trainable_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the parameters of ``model`` that require grad."""
    return {name for name, p in model.named_parameters() if p.requires_grad}


def _backbone(model: nn.Module) -> Optional[nn.Module]:
    """The backbone of a segmentor (or ``model`` itself if it is one), if it has token ids."""
    for candidate in (getattr(model, 'backbone', None), model):
        if candidate is not None and hasattr(candidate, 'seg_token_id'):
            return candidate
    return None


def token_info(model: nn.Module) -> dict[str, int]:
    """``seg_token_id``, ``image_token_id`` and ``vocab_size`` (``len(tokenizer)``) of the
    backbone of ``model``; empty when it has no tokenizer (e.g. a bare head)."""
    backbone = _backbone(model)
    if backbone is None:
        return {}
    return dict(
        seg_token_id=int(backbone.seg_token_id),
        image_token_id=int(backbone.image_token_id),
        vocab_size=len(backbone.tokenizer),
    )


def lean_meta(keys: set[str] | list[str], tokens: dict[str, int], **extra: Any) -> dict[str, Any]:
    """The ``meta['lisakit']`` record of a lean checkpoint.

    Args:
        keys: The trainable state-dict keys stored in the file.
        tokens: Token ids as returned by :func:`token_info`.
        **extra: Further fields (e.g. ``converted_from``).
    """
    return dict(
        format_version=FORMAT_VERSION,
        lean=True,
        trainable_keys=sorted(keys),
        versions=library_versions(),
        tokens=dict(tokens),
        **extra,
    )


def make_lean(model: nn.Module, checkpoint: dict) -> None:
    """Cut ``checkpoint['state_dict']`` to the trainable parameters of ``model`` and
    record :func:`lean_meta` in ``checkpoint['meta']`` (in place; used when saving)."""
    keys = trainable_keys(model)
    checkpoint['state_dict'] = {k: v for k, v in checkpoint['state_dict'].items() if k in keys}
    checkpoint.setdefault('meta', {})[META_KEY] = lean_meta(keys, token_info(model))


def lean_checkpoint(state: dict, tokens: dict[str, int], **extra: Any) -> dict:
    """A complete lean checkpoint dict from a trainable ``state`` (used by converters)."""
    return dict(state_dict=state, meta={META_KEY: lean_meta(state, tokens, **extra)})


def format_info(checkpoint: Any) -> dict:
    """The ``meta['lisakit']`` record of a loaded checkpoint (``{}`` if it has none).

    Raises:
        CheckpointError: If the file was written by a newer format version.
    """
    if not isinstance(checkpoint, dict):
        return {}
    info = (checkpoint.get('meta') or {}).get(META_KEY) or {}
    found = info.get('format_version', LEGACY_FORMAT_VERSION)
    if found > FORMAT_VERSION:
        raise CheckpointError(
            f'The checkpoint has lisakit format version {found}; this lisakit reads up to '
            f'{FORMAT_VERSION} (it was written with {info.get("versions", {}).get("lisakit")}). '
            'Upgrade lisakit to load it.'
        )
    return info


def is_lean(checkpoint: Any) -> bool:
    """Whether ``checkpoint`` is a lean lisakit checkpoint."""
    return bool(format_info(checkpoint).get('lean'))


def check_token_ids(model: nn.Module, recorded: dict, source: str) -> None:
    """Check that the token facts ``recorded`` for ``source`` equal the model's.

    A different ``<SEG>`` / ``<image>`` id or vocabulary size means the model's tokenizer
    is not the one the weights were trained with: the ``<SEG>`` rows and every id would
    be read wrong. Facts missing on either side are not compared.

    Args:
        model: The built model (a segmentor or a backbone).
        recorded: ``seg_token_id`` / ``image_token_id`` / ``vocab_size`` as recorded.
        source: What recorded them (a file name), for the message.

    Raises:
        ValueError: Naming the source, each mismatching token fact and both values.
    """
    current = token_info(model)
    wrong = [
        f'{k}: {recorded[k]} in the file vs {current[k]} in the model'
        for k in TOKEN_KEYS
        if recorded.get(k) is not None and k in current and recorded[k] != current[k]
    ]
    if wrong:
        raise ValueError(
            f'{source} was trained with another tokenizer ({"; ".join(wrong)}). Build the '
            'model with the tokenizer it was trained with (model.backbone.processor.tokenizer, '
            'seg_token and image_token of the config stored with it).'
        )


def check_tokens(model: nn.Module, checkpoint: dict, source: str = 'The checkpoint') -> None:
    """:func:`check_token_ids` on the ``tokens`` recorded in a loaded checkpoint."""
    check_token_ids(model, format_info(checkpoint).get('tokens') or {}, source)


def check_lean_keys(model: nn.Module, checkpoint: dict) -> bool:
    """Whether ``checkpoint`` is lean; if so, check its keys and tokens against ``model``.

    The trainable keys of ``model`` must equal the file's exactly, and the recorded token
    ids must equal the model's (:func:`check_tokens`).

    Raises:
        ValueError: Naming the missing / unexpected trainable keys, or the token mismatch.
        CheckpointError: If the file has a newer format version.
    """
    if not is_lean(checkpoint):
        return False
    expected, got = trainable_keys(model), set(checkpoint['state_dict'])
    missing, unexpected = sorted(expected - got), sorted(got - expected)
    if missing or unexpected:
        raise ValueError(
            f'The lean checkpoint does not match the trainable parameters of this config: '
            f'{len(missing)} missing {missing[:MAX_LISTED]}, {len(unexpected)} unexpected '
            f'{unexpected[:MAX_LISTED]}. Use the config the checkpoint was trained with '
            '(it is stored in checkpoint["meta"]["cfg"]).'
        )
    check_tokens(model, checkpoint)
    return True


def complete_lean_state(model: nn.Module, checkpoint: dict) -> None:
    """Check a lean checkpoint and fill in the frozen weights from ``model`` (no-op for a
    full checkpoint), so that mmengine loads a complete state dict."""
    if check_lean_keys(model, checkpoint):
        got = set(checkpoint['state_dict'])
        full = {k: v for k, v in model.state_dict().items() if k not in got}
        checkpoint['state_dict'] = {**full, **checkpoint['state_dict']}


def export_info(model: nn.Module, **extra: Any) -> dict[str, Any]:
    """The ``export_info.json`` record of an export folder: format version, token ids,
    library versions and ``extra`` (tensor counts, ``merged``)."""
    tokens = token_info(model)
    return dict(
        format_version=FORMAT_VERSION,
        seg_token_id=tokens.get('seg_token_id'),
        image_token_id=tokens.get('image_token_id'),
        vocab_size=tokens.get('vocab_size'),
        versions=library_versions(),
        **extra,
    )
