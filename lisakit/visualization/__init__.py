"""Visualizers."""

from .local_visualizer import ReasonSegLocalVisualizer

__all__ = ['ReasonSegLocalVisualizer']
