"""Engine extensions (hooks mmengine lacks)."""

from .hooks import (
    DumpMetricsHook,
    FullBestCheckpointHook,
    LeanCheckpointHook,
    ReasonSegVisualizationHook,
    TrainingHistoryHook,
)

__all__ = [
    'DumpMetricsHook',
    'FullBestCheckpointHook',
    'LeanCheckpointHook',
    'ReasonSegVisualizationHook',
    'TrainingHistoryHook',
]
