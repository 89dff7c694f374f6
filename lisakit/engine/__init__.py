"""Engine extensions: hooks mmengine lacks, crash-safe runners and resumable train loops."""

from .hooks import (
    DumpMetricsHook,
    FullBestCheckpointHook,
    InvalidLossHook,
    LeanCheckpointHook,
    ReasonSegVisualizationHook,
    ResumeStateHook,
    TrainingHistoryHook,
)
from .loops import EpochBasedTrainLoop, IterBasedTrainLoop
from .runner import FlexibleRunner, Runner

__all__ = [
    'DumpMetricsHook',
    'EpochBasedTrainLoop',
    'FlexibleRunner',
    'FullBestCheckpointHook',
    'InvalidLossHook',
    'IterBasedTrainLoop',
    'LeanCheckpointHook',
    'ReasonSegVisualizationHook',
    'ResumeStateHook',
    'Runner',
    'TrainingHistoryHook',
]
