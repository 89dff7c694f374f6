"""Language-model cross-entropy on answer tokens."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from lisakit.registry import MODELS
from lisakit.utils.constants import LM_IGNORE_INDEX


@MODELS.register_module()
class LMCrossEntropyLoss(nn.Module):
    """Causal-LM cross-entropy: logits at position t predict the label at t + 1.

    Args:
        loss_weight: Multiplier (1.0 in LISA).
        ignore_index: Label value excluded from the loss.
    """

    def __init__(self, loss_weight: float = 1.0, ignore_index: int = LM_IGNORE_INDEX) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index

    def forward(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        per_sample: bool = False,
        batch_index: Optional[torch.Tensor] = None,
        batch_size: Optional[int] = None,
    ) -> torch.Tensor:
        """Compute the weighted CE.

        Args:
            logits: (B, L, V); or (N, V) at selected positions with ``batch_index``.
            labels: (B, L), ``ignore_index`` where not supervised; or (N,) the target
                of each selected position (already shifted).
            per_sample: Return (B,) token-means per sample instead of the batch
                token-mean (LISA's reduction).
            batch_index: (N,) sample of each selected position (the backbone's
                ``logits_batch_index``); ``None`` for (B, L, V) logits.
            batch_size: B, for ``per_sample`` with ``batch_index``.

        Returns:
            A scalar, or (B,) if ``per_sample``.
        """
        if batch_index is None:
            return self._dense(logits, labels, per_sample)
        loss = F.cross_entropy(
            logits.float(), labels, ignore_index=self.ignore_index, reduction='none'
        )  # (N,)
        valid = (labels != self.ignore_index).float()  # (N,)
        if not per_sample:
            return self.loss_weight * loss.sum() / valid.sum().clamp(min=1)
        if batch_size is None:
            raise ValueError('per_sample with batch_index needs batch_size.')
        total = loss.new_zeros(batch_size).index_add_(0, batch_index, loss)  # (B,)
        count = valid.new_zeros(batch_size).index_add_(0, batch_index, valid)  # (B,)
        return self.loss_weight * total / count.clamp(min=1)

    def _dense(self, logits: torch.Tensor, labels: torch.Tensor, per_sample: bool) -> torch.Tensor:
        """CE on (B, L, V) logits and (B, L) labels.

        Kept apart from the selected-position path: flattening to (B * (L-1), V) gives the
        same values up to float summation order, which moved the demo's results.
        """
        shift_logits = logits[:, :-1].float()  # (B, L-1, V)
        shift_labels = labels[:, 1:]  # (B, L-1)
        loss = F.cross_entropy(
            shift_logits.transpose(1, 2),
            shift_labels,
            ignore_index=self.ignore_index,
            reduction='none',
        )  # (B, L-1)
        valid = (shift_labels != self.ignore_index).float()
        if per_sample:
            return self.loss_weight * loss.sum(1) / valid.sum(1).clamp(min=1)
        return self.loss_weight * loss.sum() / valid.sum().clamp(min=1)
