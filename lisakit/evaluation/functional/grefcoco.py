"""Generalized referring segmentation scores (gRefCOCO: 0, 1 or many targets).

Definitions (GRES / ReLA's ``refer_evaluation.py`` and the GSVA paper, with LISA's
per-mask IoU and epsilons so single-target numbers equal ``ReasonSegMetric``'s):

Per sample: P = union of the predicted masks (empty when none), G = union of the
targets (ignored pixels excluded), and ``rejected`` = the model said "no such object"
(an explicit flag when the model has one, else P is empty).

- no-target sample: I = 0; rejected -> iou = 1, U = 0; not rejected -> iou = 0, U = |P|.
- target sample: rejected -> I = 0, else I = |P and G|; U = |P or G|;
  iou = I / (U + 1e-5), or 1 when U = 0 (LISA's empty / empty rule).
- gIoU = sum iou / (N + 1e-5), cIoU = sum I / (sum U + 1e-10) over all N samples.
- N-acc = TP / (TP + FN): no-target samples rejected, over all no-target samples.
- T-acc = TN / (TN + FP): target samples not rejected, over all target samples.

Per-object mode (one mask per target): **object-matched IoU** pairs predicted and
target masks one-to-one by Hungarian matching on their IoU
(``scipy.optimize.linear_sum_assignment``, maximizing the sum); a sample scores
sum of matched IoUs / max(#predicted, #targets), so missing and extra masks count 0.
A no-target sample scores as in the merged score (1 when rejected, else 0).
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from lisakit.utils.constants import IGNORE_INDEX

from .giou_ciou import intersection_union, mask_iou

ArrayLike = Union[np.ndarray, torch.Tensor]


def _to_tensor(x: ArrayLike) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    return torch.from_numpy(np.ascontiguousarray(x))


def merge_pred_masks(pred: ArrayLike, size: tuple[int, int]) -> torch.Tensor:
    """Union of (N, H, W) binary predictions -> (H, W) bool (all False when N = 0)."""
    pred = _to_tensor(pred).bool()
    if len(pred) == 0:
        return torch.zeros(size, dtype=torch.bool)  # (H, W)
    return pred.any(0)  # (H, W)


def merge_gt_masks(gt: ArrayLike, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Union of (N, H, W) targets -> (H, W) uint8: 1 where any target is 1,
    ``ignore_index`` where none is 1 but one is ignored, else 0 (all 0 when N = 0)."""
    gt = _to_tensor(gt)
    out = torch.zeros(gt.shape[-2:], dtype=torch.uint8)  # (H, W)
    if len(gt) == 0:
        return out
    out[(gt == ignore_index).any(0)] = ignore_index
    out[(gt == 1).any(0)] = 1
    return out


def merged_sample_score(
    pred: ArrayLike,
    gt: ArrayLike,
    no_target: bool,
    rejected: Optional[bool] = None,
    ignore_index: int = IGNORE_INDEX,
) -> dict:
    """One sample's merged-mask ``(I, U, iou, no_target, rejected)``.

    Args:
        pred: (N_p, H, W) binary predicted masks (N_p may be 0).
        gt: (N_g, H, W) targets (0 / 1 / ``ignore_index``; N_g may be 0).
        no_target: Whether the query names no object.
        rejected: The model's own "no such object" flag; None: rejected when the
            merged prediction has no foreground pixel.
        ignore_index: Target value excluded from the counts.

    Returns:
        ``dict(I=int, U=int, iou=float, no_target=bool, rejected=bool)``.
    """
    gt_merged = merge_gt_masks(gt, ignore_index)  # (H, W)
    pred_merged = merge_pred_masks(pred, tuple(gt_merged.shape))  # (H, W)
    inter, union = (int(v) for v in intersection_union(pred_merged, gt_merged, ignore_index))
    if rejected is None:
        rejected = not bool((pred_merged & (gt_merged != ignore_index)).any())
    if no_target:
        union = 0 if rejected else union  # inter is 0: the target is empty
        iou = 1.0 if rejected else 0.0
        inter = 0
    else:
        inter = 0 if rejected else inter
        iou = mask_iou(inter, union)
    return dict(I=inter, U=union, iou=iou, no_target=bool(no_target), rejected=bool(rejected))


def iou_matrix(pred: ArrayLike, gt: ArrayLike, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """(N_p, N_g) LISA per-mask IoU of every predicted / target pair."""
    pred, gt = _to_tensor(pred).bool(), _to_tensor(gt)
    out = np.zeros((len(pred), len(gt)), dtype=np.float64)
    for j in range(len(gt)):
        if len(pred) == 0:
            break
        target = gt[j].expand_as(pred)  # (N_p, H, W)
        inter, union = intersection_union(pred, target, ignore_index)  # (N_p,), (N_p,)
        out[:, j] = [mask_iou(int(i), int(u)) for i, u in zip(inter, union)]
    return out


def object_matched_iou(
    pred: ArrayLike,
    gt: ArrayLike,
    num_pred: Optional[int] = None,
    ignore_index: int = IGNORE_INDEX,
) -> float:
    """Object-matched IoU of one sample (per-object mode, see the module docstring).

    Args:
        pred: (N_p, H, W) binary predicted masks.
        gt: (N_g, H, W) targets, one per object; N_g = 0 for a no-target query.
        num_pred: How many masks the model generated, when known (generate mode pads
            missing masks with empty ones and keeps at most one per target: only the
            first ``num_pred`` are predictions, and extra generated masks still count
            against the score). None: every mask of ``pred`` is a prediction.
        ignore_index: Target value excluded from the counts.

    Returns:
        A float in [0, 1].
    """
    n_pred = len(pred) if num_pred is None else num_pred
    pred = pred[:n_pred]
    if len(gt) == 0:
        return 1.0 if n_pred == 0 else 0.0
    if n_pred == 0:
        return 0.0
    ious = iou_matrix(pred, gt, ignore_index)  # (N_p, N_g)
    rows, cols = linear_sum_assignment(ious, maximize=True)
    return float(ious[rows, cols].sum() / max(n_pred, len(gt)))
