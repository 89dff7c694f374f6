from .training_history_hook import TrainingHistoryHook
from .visualization_hook import ReasonSegVisualizationHook

__all__ = ['ReasonSegVisualizationHook', 'TrainingHistoryHook']
