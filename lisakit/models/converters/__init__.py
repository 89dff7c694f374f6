"""Converters from other projects' checkpoints to lisakit models."""

from .checkpoint_io import read_state_dict
from .lisa_official import ConversionReport, convert_lisa_checkpoint, map_keys

__all__ = ['ConversionReport', 'convert_lisa_checkpoint', 'map_keys', 'read_state_dict']
