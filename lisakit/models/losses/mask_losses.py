"""Mask losses with LISA's exact formulas (``model/LISA.py``).

Both accept either one (N, H, W) tensor or a sequence of (n_i, H_i, W_i) tensors
(images of different sizes); they return ``loss_weight`` times the mean over all
masks, i.e. sum over masks / (N + 1e-8), as LISA averages per mask over the batch.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from lisakit.registry import MODELS

MaskInput = Union[torch.Tensor, Sequence[torch.Tensor]]

#: Added to the mask count so an empty batch gives 0, as in LISA.
NUM_MASKS_EPS = 1e-8
#: LISA's Dice scale and epsilon: effective smoothing of eps * scale = 1e-3 pixels.
DICE_SCALE = 1000.0
DICE_EPS = 1e-6


def bce_per_mask(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Pixel-mean BCE-with-logits of each mask: (N, H, W) x2 -> (N,)."""
    loss = F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction='none')
    return loss.flatten(1).mean(1)


def dice_per_mask(
    logits: torch.Tensor, targets: torch.Tensor, scale: float = DICE_SCALE, eps: float = DICE_EPS
) -> torch.Tensor:
    """LISA's Dice loss of each mask: 1 - (2*sum(p*t)/s + eps) / (sum(p)/s + sum(t)/s + eps)."""
    probs = logits.float().sigmoid().flatten(1)  # (N, HW)
    targets = targets.float().flatten(1)
    numerator = 2 * (probs / scale * targets).sum(-1)
    denominator = (probs / scale).sum(-1) + (targets / scale).sum(-1)
    return 1 - (numerator + eps) / (denominator + eps)


def _mean_over_masks(fn, logits: MaskInput, targets: MaskInput) -> torch.Tensor:
    if isinstance(logits, torch.Tensor):
        logits, targets = [logits], [targets]
    if len(logits) != len(targets):
        raise ValueError(f'Got {len(logits)} logit groups but {len(targets)} target groups.')
    per_mask, count = [], 0
    for x, t in zip(logits, targets):
        if x.shape != t.shape:
            raise ValueError(
                f'Mask logits {tuple(x.shape)} and targets {tuple(t.shape)} '
                'must have the same (N, H, W) shape.'
            )
        if x.shape[0]:
            per_mask.append(fn(x, t).sum())
        count += x.shape[0]
    if not per_mask:
        ref = logits[0] if len(logits) else torch.zeros(())
        return ref.sum().float() * 0
    return torch.stack(per_mask).sum() / (count + NUM_MASKS_EPS)


@MODELS.register_module()
class MaskBCELoss(nn.Module):
    """Per-mask pixel-mean BCE, averaged over masks (LISA's ``sigmoid_ce_loss``).

    Args:
        loss_weight: Multiplier (2.0 in LISA).
        loss_name: Key of this loss in the loss dict (mmengine sums keys starting
            with ``loss_``).
    """

    def __init__(self, loss_weight: float = 2.0, loss_name: str = 'loss_bce') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.loss_name = loss_name

    def forward(self, logits: MaskInput, targets: MaskInput) -> torch.Tensor:
        """Weighted mean BCE over all masks; targets are 0/1."""
        return self.loss_weight * _mean_over_masks(bce_per_mask, logits, targets)


@MODELS.register_module()
class DiceLoss(nn.Module):
    """LISA's Dice loss, averaged over masks.

    Args:
        loss_weight: Multiplier (0.5 in LISA).
        scale: Scale s dividing the sums (1000 in LISA).
        eps: Epsilon added to numerator and denominator (1e-6 in LISA).
        loss_name: Key of this loss in the loss dict.
    """

    def __init__(
        self,
        loss_weight: float = 0.5,
        scale: float = DICE_SCALE,
        eps: float = DICE_EPS,
        loss_name: str = 'loss_dice',
    ) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.loss_name = loss_name
        self.scale = scale
        self.eps = eps

    def forward(self, logits: MaskInput, targets: MaskInput) -> torch.Tensor:
        """Weighted mean Dice over all masks; targets are 0/1."""

        def fn(x, t):
            return dice_per_mask(x, t, self.scale, self.eps)

        return self.loss_weight * _mean_over_masks(fn, logits, targets)
