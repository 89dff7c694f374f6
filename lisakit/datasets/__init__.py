"""Datasets and transforms."""

from . import transforms  # noqa: F401 (registers transforms)
from .grefcoco import GRefCOCODataset
from .jsonl import JSONLDataset
from .mixed import MixedDataset
from .part_seg import PartSegDataset
from .reasonseg import LoadReasonSegAnnotation, ReasonSegDataset, load_reasonseg_annotation
from .refcoco import RefCOCODataset
from .samplers import FreshDrawSampler
from .semantic_seg import SemanticSegDataset
from .shapes_reasonseg import ShapesReasonSegDataset
from .templates import (
    ANSWER_LIST,
    EXPLANATORY_QUESTION_LIST,
    LONG_QUESTION_LIST,
    SHORT_QUESTION_LIST,
    VAL_ANSWER,
)
from .vqa import VQADataset

__all__ = [
    'ANSWER_LIST',
    'LoadReasonSegAnnotation',
    'ReasonSegDataset',
    'load_reasonseg_annotation',
    'LONG_QUESTION_LIST',
    'SHORT_QUESTION_LIST',
    'ShapesReasonSegDataset',
    'VAL_ANSWER',
    'EXPLANATORY_QUESTION_LIST',
    'FreshDrawSampler',
    'GRefCOCODataset',
    'JSONLDataset',
    'MixedDataset',
    'PartSegDataset',
    'VQADataset',
    'RefCOCODataset',
    'SemanticSegDataset',
]
