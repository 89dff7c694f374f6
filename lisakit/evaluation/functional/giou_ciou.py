"""gIoU / cIoU exactly as LISA computes them: re-exported from :mod:`lisakit.utils.mask_iou`.

The functions live in ``lisakit.utils`` so that models (training IoU) and evaluation
(the metric) share one definition without models depending on evaluation.
"""

from lisakit.utils.mask_iou import (
    CIOU_EPS,
    GIOU_COUNT_EPS,
    IOU_EPS,
    giou_ciou,
    intersection_union,
    mask_iou,
    summarize_iou,
)

__all__ = [
    'CIOU_EPS',
    'GIOU_COUNT_EPS',
    'IOU_EPS',
    'giou_ciou',
    'intersection_union',
    'mask_iou',
    'summarize_iou',
]
