from .grefcoco_metric import GRefCOCOMetric
from .reasonseg_metric import ReasonSegMetric

__all__ = ['GRefCOCOMetric', 'ReasonSegMetric']
