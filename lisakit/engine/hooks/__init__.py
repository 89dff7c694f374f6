from .checkpoint_hook import FullBestCheckpointHook
from .dump_metrics_hook import DumpMetricsHook
from .lean_checkpoint_hook import LeanCheckpointHook
from .training_history_hook import TrainingHistoryHook
from .visualization_hook import ReasonSegVisualizationHook

__all__ = [
    'DumpMetricsHook',
    'FullBestCheckpointHook',
    'LeanCheckpointHook',
    'ReasonSegVisualizationHook',
    'TrainingHistoryHook',
]
