"""Engine extensions (hooks mmengine lacks)."""
from .hooks import ReasonSegVisualizationHook, TrainingHistoryHook

__all__ = ['ReasonSegVisualizationHook', 'TrainingHistoryHook']
