"""Functional metrics."""

from .giou_ciou import giou_ciou, intersection_union, mask_iou, summarize_iou
from .grefcoco import (
    iou_matrix,
    merge_gt_masks,
    merge_pred_masks,
    merged_sample_score,
    object_matched_iou,
)

__all__ = [
    'giou_ciou',
    'intersection_union',
    'iou_matrix',
    'mask_iou',
    'merge_gt_masks',
    'merge_pred_masks',
    'merged_sample_score',
    'object_matched_iou',
    'summarize_iou',
]
