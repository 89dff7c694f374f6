"""Build-time checks of a segmentor's parts: present, fitting together, trainable counts."""

from __future__ import annotations

import logging
from typing import Optional

from mmengine.logging import print_log
from torch import nn

#: An example config for each required part, quoted in the error for a missing one.
REQUIRED_PARTS = dict(
    backbone="dict(type='LlavaBackbone', tokenizer=..., pretrained='/path/to/llava')",
    sam_encoder="dict(type='SAMImageEncoder', arch='vit_h', checkpoint='/path/to/sam.pth')",
    neck="dict(type='SegProjector', out_channels=256)",
    head="dict(type='SAMHead', embed_dim=256)",
)

#: The key of each head's SAM weights, and the keys that stand in for them (a random model).
#: A head without its weights key takes the encoder's: one SAM path per config.
SHARED_SAM_WEIGHTS = {
    'SAMHead': ('checkpoint', ()),
    'SAM2Head': ('pretrained', ('sam2_config',)),
}

#: Defaults filled in for one of the mask losses when an old config sets only the other.
LEGACY_MASK_LOSSES = dict(
    loss_bce=dict(type='MaskBCELoss', loss_weight=2.0),
    loss_dice=dict(type='DiceLoss', loss_weight=0.5),
)


def head_with_legacy_losses(head: dict, **legacy: Optional[dict]) -> dict:
    """Move the mask-loss configs of older configs (``model.loss_bce`` /
    ``model.loss_dice``) into ``model.head.loss_decode``, where the head owns them."""
    if all(cfg is None for cfg in legacy.values()):
        return head
    if 'loss_decode' in head:
        raise ValueError(
            'Set the mask losses in model.head.loss_decode only (e.g. --cfg-options '
            'model.head.loss_decode.0.loss_weight=2.0 for the BCE, .1. for the Dice); '
            'remove model.loss_bce / model.loss_dice.'
        )
    print_log(
        'model.loss_bce / model.loss_dice are deprecated: the head owns its losses; '
        'write them as model.head.loss_decode=[dict(type="MaskBCELoss", ...), '
        'dict(type="DiceLoss", ...)].',
        logger='current',
        level=logging.WARNING,
    )
    losses = [
        dict(LEGACY_MASK_LOSSES[k] if v is None else v, loss_name=k) for k, v in legacy.items()
    ]
    return dict(head, loss_decode=losses)


def head_with_encoder_weights(head: dict, sam_encoder: dict) -> dict:
    """``head`` with the SAM weights of ``sam_encoder`` when it names none itself.

    SAM's prompt encoder and mask decoder come from the same file (SAM) or folder (SAM 2)
    as its image encoder, so a config writes the path once, in ``model.sam_encoder``
    (``checkpoint`` / ``pretrained``); ``model.head.checkpoint`` / ``pretrained`` are set
    only to take the head's weights from elsewhere.
    """
    head_type = head.get('type')
    name = head_type if isinstance(head_type, str) else getattr(head_type, '__name__', None)
    if name not in SHARED_SAM_WEIGHTS:
        return head
    key, alternatives = SHARED_SAM_WEIGHTS[name]
    if any(head.get(k) is not None for k in (key, *alternatives)):
        return head
    if sam_encoder.get(key) is None:
        return head
    return dict(head, **{key: sam_encoder[key]})


def head_config(head: dict, sam_encoder: dict, **legacy_losses: Optional[dict]) -> dict:
    """The head's config as built: the encoder's SAM weights when it names none
    (:func:`head_with_encoder_weights`) and older configs' mask losses moved into
    ``loss_decode`` (:func:`head_with_legacy_losses`)."""
    return head_with_legacy_losses(
        head_with_encoder_weights(dict(head), sam_encoder), **legacy_losses
    )


def require_parts(**parts: Optional[dict]) -> None:
    """Raise ValueError naming the first missing part config and an example of it."""
    for name, cfg in parts.items():
        if cfg is None:
            raise ValueError(
                f'model.{name} is missing; LISA needs a {name} config such as '
                f'{REQUIRED_PARTS[name]}.'
            )


def check_dims(backbone: nn.Module, sam_encoder: nn.Module, neck: nn.Module, head: nn.Module):
    """Fail early, naming the config keys, when components do not fit together."""
    checks = [
        (
            'model.neck.in_channels',
            getattr(neck, 'in_channels', None),
            'the backbone hidden size',
            backbone.hidden_size,
        ),
        (
            'model.neck.out_channels',
            getattr(neck, 'out_channels', None),
            'model.head.embed_dim',
            head.embed_dim,
        ),
        (
            'model.sam_encoder output channels',
            sam_encoder.out_channels,
            'model.head.embed_dim',
            head.embed_dim,
        ),
        (
            'model.sam_encoder img_size / patch_size',
            sam_encoder.embedding_size,
            'model.head.image_embedding_size',
            head.image_embedding_size,
        ),
        (
            'model.sam_encoder.img_size',
            sam_encoder.img_size,
            'model.head.input_image_size',
            head.input_image_size,
        ),
    ]
    for key, got, other, expected in checks:
        if got is not None and got != expected:
            raise ValueError(
                f'{key} is {got} but must equal {other} ({expected}); '
                f'set {key.split(" ")[0]} to {expected}.'
            )


def _parameter_counts(module: nn.Module) -> tuple[int, int]:
    params = list(module.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def log_trainable(model: nn.Module, parts: tuple[str, ...]) -> None:
    """One log line: trainable / total parameters of the model and of each part."""
    lines = []
    for name in parts:
        train, total = _parameter_counts(getattr(model, name))
        lines.append(f'{name}: {train:,} / {total:,}')
    train, total = _parameter_counts(model)
    print_log(
        f'{type(model).__name__} trainable / total parameters: {train:,} / {total:,} '
        f'({"; ".join(lines)})',
        logger='current',
    )
