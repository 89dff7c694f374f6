"""Engine extensions (hooks mmengine lacks)."""

from .hooks import (
    DumpMetricsHook,
    FullBestCheckpointHook,
    ReasonSegVisualizationHook,
    TrainingHistoryHook,
)

__all__ = [
    'DumpMetricsHook',
    'FullBestCheckpointHook',
    'ReasonSegVisualizationHook',
    'TrainingHistoryHook',
]
