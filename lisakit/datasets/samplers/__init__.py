"""Data samplers (registered in ``lisakit.registry.DATA_SAMPLERS``)."""

from .fresh_draw_sampler import FreshDrawSampler

__all__ = ['FreshDrawSampler']
