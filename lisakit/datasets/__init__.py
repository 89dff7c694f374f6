"""Datasets and transforms."""

from . import transforms  # noqa: F401 (registers transforms)
from .reasonseg import LoadReasonSegAnnotation, ReasonSegDataset, load_reasonseg_annotation
from .shapes_reasonseg import ShapesReasonSegDataset
from .templates import ANSWER_LIST, LONG_QUESTION_LIST, SHORT_QUESTION_LIST, VAL_ANSWER

__all__ = [
    'ANSWER_LIST',
    'LoadReasonSegAnnotation',
    'ReasonSegDataset',
    'load_reasonseg_annotation',
    'LONG_QUESTION_LIST',
    'SHORT_QUESTION_LIST',
    'ShapesReasonSegDataset',
    'VAL_ANSWER',
]
