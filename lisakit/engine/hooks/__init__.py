from .checkpoint_hook import FullBestCheckpointHook
from .dump_metrics_hook import DumpMetricsHook
from .invalid_loss_hook import InvalidLossHook
from .lean_checkpoint_hook import LeanCheckpointHook
from .resume_state_hook import ResumeStateHook
from .training_history_hook import TrainingHistoryHook
from .visualization_hook import ReasonSegVisualizationHook

__all__ = [
    'DumpMetricsHook',
    'FullBestCheckpointHook',
    'InvalidLossHook',
    'LeanCheckpointHook',
    'ReasonSegVisualizationHook',
    'ResumeStateHook',
    'TrainingHistoryHook',
]
