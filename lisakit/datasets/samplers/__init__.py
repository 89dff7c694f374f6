"""Data samplers (registered in ``lisakit.registry.DATA_SAMPLERS``)."""

from .default_sampler import DefaultSampler
from .fresh_draw_sampler import FreshDrawSampler

__all__ = ['DefaultSampler', 'FreshDrawSampler']
