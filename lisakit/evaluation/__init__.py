"""Evaluation: functional gIoU/cIoU and the registered metric."""

from .functional import giou_ciou
from .metrics import ReasonSegMetric

__all__ = ['ReasonSegMetric', 'giou_ciou']
