"""Engine extensions (hooks mmengine lacks)."""

from .hooks import DumpMetricsHook, ReasonSegVisualizationHook, TrainingHistoryHook

__all__ = ['DumpMetricsHook', 'ReasonSegVisualizationHook', 'TrainingHistoryHook']
