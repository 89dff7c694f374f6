"""Engine extensions (hooks mmengine lacks, a FlexibleRunner that resumes right)."""

from .hooks import (
    DumpMetricsHook,
    FullBestCheckpointHook,
    LeanCheckpointHook,
    ReasonSegVisualizationHook,
    TrainingHistoryHook,
)
from .runner import FlexibleRunner

__all__ = [
    'DumpMetricsHook',
    'FlexibleRunner',
    'FullBestCheckpointHook',
    'LeanCheckpointHook',
    'ReasonSegVisualizationHook',
    'TrainingHistoryHook',
]
