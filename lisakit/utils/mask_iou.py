"""gIoU / cIoU exactly as LISA computes them (``train_ds.py`` validate); shared by
models (training IoU) and evaluation (the metric).

Per mask k (foreground class, ignored pixels excluded): I_k = |P and G|,
U_k = |P or G|, iou_k = I_k / (U_k + 1e-5), and iou_k = 1 when U_k = 0 (an empty
prediction on an empty target is correct).

- gIoU = sum_k iou_k / (N + 1e-5)   (mean over masks)
- cIoU = sum_k I_k / (sum_k U_k + 1e-10)   (cumulative over the split)
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

from .constants import IGNORE_INDEX

ArrayLike = Union[np.ndarray, torch.Tensor]
#: LISA's epsilons.
IOU_EPS = 1e-5
GIOU_COUNT_EPS = 1e-5
CIOU_EPS = 1e-10


def _to_tensor(x: ArrayLike) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    return torch.from_numpy(np.ascontiguousarray(x))


def intersection_union(
    pred: ArrayLike, gt: ArrayLike, ignore_index: int = IGNORE_INDEX
) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground intersections and unions of masks, ignoring ``ignore_index``.

    Args:
        pred: (H, W) or (N, H, W) binary predictions (bool or 0/1).
        gt: Targets of the same shape with values 0, 1 and ``ignore_index``.
        ignore_index: Target value excluded from both counts.

    Returns:
        ``(I, U)`` int64 pixel counts, scalars for (H, W) input, else (N,).
    """
    pred, gt = _to_tensor(pred), _to_tensor(gt)
    if pred.shape != gt.shape:
        raise ValueError(
            f'Prediction {tuple(pred.shape)} and target {tuple(gt.shape)} shapes differ.'
        )
    valid = gt != ignore_index
    p = pred.bool() & valid
    g = (gt == 1) & valid
    return (p & g).sum((-2, -1)), (p | g).sum((-2, -1))


def mask_iou(intersection: float, union: float) -> float:
    """LISA's per-mask IoU: I / (U + 1e-5), or 1.0 if the union is empty."""
    return 1.0 if union == 0 else intersection / (union + IOU_EPS)


def summarize_iou(intersections: Sequence[float], unions: Sequence[float]) -> dict[str, float]:
    """gIoU and cIoU from per-mask intersections and unions."""
    ious = [mask_iou(i, u) for i, u in zip(intersections, unions)]
    return {
        'gIoU': float(sum(ious) / (len(ious) + GIOU_COUNT_EPS)),
        'cIoU': float(sum(intersections) / (sum(unions) + CIOU_EPS)),
    }


def giou_ciou(
    preds: Sequence[ArrayLike], gts: Sequence[ArrayLike], ignore_index: int = IGNORE_INDEX
) -> dict[str, float]:
    """Compute LISA's gIoU and cIoU over a set of masks.

    Args:
        preds: (H, W) binary predictions (tensors or arrays), one per mask.
        gts: (H, W) targets (0/1, ``ignore_index`` = ignored), aligned with ``preds``.
        ignore_index: Target value excluded from evaluation.

    Returns:
        ``{'gIoU': float, 'cIoU': float}``.
    """
    if len(preds) != len(gts):
        raise ValueError(f'Got {len(preds)} predictions but {len(gts)} targets.')
    pairs = [intersection_union(p, g, ignore_index) for p, g in zip(preds, gts)]
    return summarize_iou([int(i) for i, _ in pairs], [int(u) for _, u in pairs])
