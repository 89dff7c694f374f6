"""The hidden states that predict each ``<SEG>`` (shared by the VLM backbones)."""

from __future__ import annotations

import torch

from lisakit.utils.constants import SEG_TOKEN


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
