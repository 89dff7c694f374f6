"""Converters from other projects' checkpoints to lisakit models."""

from .checkpoint_io import read_state_dict
from .lisa_official import ConversionReport, convert_lisa_checkpoint, map_keys
from .llava_v1 import convert_llava_v1_checkpoint

__all__ = [
    'ConversionReport',
    'convert_lisa_checkpoint',
    'convert_llava_v1_checkpoint',
    'map_keys',
    'read_state_dict',
]
