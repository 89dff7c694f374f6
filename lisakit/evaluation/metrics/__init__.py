from .reasonseg_metric import ReasonSegMetric

__all__ = ['ReasonSegMetric']
