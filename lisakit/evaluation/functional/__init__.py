"""Functional metrics."""

from .giou_ciou import giou_ciou, intersection_union, mask_iou, summarize_iou

__all__ = ['giou_ciou', 'intersection_union', 'mask_iou', 'summarize_iou']
