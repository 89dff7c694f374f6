"""Evaluation: functional gIoU/cIoU and the registered metrics."""

from .functional import giou_ciou
from .metrics import GRefCOCOMetric, ReasonSegMetric

__all__ = ['GRefCOCOMetric', 'ReasonSegMetric', 'giou_ciou']
