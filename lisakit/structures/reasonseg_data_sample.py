"""The data sample passed between lisakit components."""

from __future__ import annotations

import torch
from mmengine.structures import BaseDataElement


class ReasonSegDataSample(BaseDataElement):
    """One image with its conversation, target masks and predictions.

    Data fields:
        gt_masks: (N, H, W) uint8 targets at the original size; 1 = object,
            0 = background, 255 = ignored (ignored pixels count as background in
            training losses, as in LISA, and are excluded from metrics).
        pred_masks: (N, H, W) bool predictions (mask logit > 0).
        pred_text: Generated answer text (generation mode only).
        losses: Per-sample validation losses (teacher-forced prediction only).

    Meta fields (set by ``PackLISAInputs``): ``ori_shape`` (H, W), ``sam_resize``
    (h, w) of the resized image inside SAM's padded input, ``question``,
    ``answer``, ``img_path`` and dataset-specific keys such as ``query_type``.
    """

    @property
    def gt_masks(self) -> torch.Tensor:
        return self._gt_masks

    @gt_masks.setter
    def gt_masks(self, value: torch.Tensor) -> None:
        self.set_field(value, '_gt_masks', dtype=torch.Tensor)

    @gt_masks.deleter
    def gt_masks(self) -> None:
        del self._gt_masks

    @property
    def pred_masks(self) -> torch.Tensor:
        return self._pred_masks

    @pred_masks.setter
    def pred_masks(self, value: torch.Tensor) -> None:
        self.set_field(value, '_pred_masks', dtype=torch.Tensor)

    @pred_masks.deleter
    def pred_masks(self) -> None:
        del self._pred_masks
