"""Visualizers."""

from .local_visualizer import ReasonSegLocalVisualizer, overlay_masks

__all__ = ['ReasonSegLocalVisualizer', 'overlay_masks']
