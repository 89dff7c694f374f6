"""Outputs every VLM backbone computes the same way: ``<SEG>`` states, supervised logits."""

from __future__ import annotations

import torch
from torch import nn

from lisakit.utils.constants import LM_IGNORE_INDEX, SEG_TOKEN


def seg_predicting_states(
    hidden_states: torch.Tensor, input_ids: torch.Tensor, seg_token_id: int
) -> list[torch.Tensor]:
    """LISA's rule: the state at the position just before each ``<SEG>`` (whose logits emit it).

    Args:
        hidden_states: (B, L, D) final (normed) hidden states.
        input_ids: (B, L) ids aligned with ``hidden_states``.
        seg_token_id: Id of ``<SEG>``.

    Returns:
        A list of B tensors of shape (n_i, D), in ``<SEG>`` order.
    """
    is_seg = input_ids == seg_token_id  # (B, L)
    if bool(is_seg[:, 0].any()):
        raise ValueError(f'{SEG_TOKEN!r} cannot be the first token: no state predicts it.')
    predicts_seg = torch.roll(is_seg, shifts=-1, dims=1)  # position p-1 predicts p
    predicts_seg[:, -1] = False
    return [hidden_states[b][predicts_seg[b]] for b in range(hidden_states.shape[0])]


def supervised_logits(lm_head: nn.Module, hidden: torch.Tensor, labels: torch.Tensor) -> dict:
    """LM-head logits only where the next token is supervised (what the LM loss reads).

    Args:
        lm_head: The language model head.
        hidden: (B, L, D) final hidden states.
        labels: (B, L) LM labels, ``LM_IGNORE_INDEX`` where ignored.

    Returns:
        ``logits`` (N, V) at the N positions t whose label t + 1 counts,
        ``logits_batch_index`` (N,) their sample and ``logits_labels`` (N,) their target.
    """
    batch, pos = (labels[:, 1:] != LM_IGNORE_INDEX).nonzero(as_tuple=True)  # (N,)
    return dict(
        logits=lm_head(hidden[batch, pos]),  # (N, V)
        logits_batch_index=batch,
        logits_labels=labels[batch, pos + 1],
    )
