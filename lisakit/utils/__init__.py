"""Shared utilities."""

from .constants import (
    CLIP_PIXEL_MEAN,
    CLIP_PIXEL_STD,
    IGNORE_INDEX,
    IMAGE_TOKEN,
    LM_IGNORE_INDEX,
    MASK_LOGIT_THRESHOLD,
    SAM_PIXEL_MEAN,
    SAM_PIXEL_STD,
    SEG_TOKEN,
)

__all__ = [
    'CLIP_PIXEL_MEAN',
    'CLIP_PIXEL_STD',
    'IGNORE_INDEX',
    'IMAGE_TOKEN',
    'LM_IGNORE_INDEX',
    'MASK_LOGIT_THRESHOLD',
    'SAM_PIXEL_MEAN',
    'SAM_PIXEL_STD',
    'SEG_TOKEN',
]
