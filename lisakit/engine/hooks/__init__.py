from .checkpoint_hook import FullBestCheckpointHook
from .dump_metrics_hook import DumpMetricsHook
from .training_history_hook import TrainingHistoryHook
from .visualization_hook import ReasonSegVisualizationHook

__all__ = [
    'DumpMetricsHook',
    'FullBestCheckpointHook',
    'ReasonSegVisualizationHook',
    'TrainingHistoryHook',
]
