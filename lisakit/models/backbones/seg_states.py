"""Outputs every VLM backbone computes the same way: ``<SEG>`` states, supervised logits,
and greedy generation that keeps the states predicting each generated ``<SEG>``."""

from __future__ import annotations

from typing import Optional

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


def generate_with_seg_states(
    hf_model: nn.Module,
    tokenizer,
    seg_token_id: int,
    suppress_token_id: int,
    generation_kwargs: dict,
    **model_inputs,
) -> dict:
    """Greedy-decode with Hugging Face ``generate`` (KV cache on), keeping the states
    that predict each generated ``<SEG>``.

    ``generate`` returns each step's final (normed) hidden states; the state at the last
    position of step t is the one whose logits chose token t, so the ``<SEG>`` states
    need no second forward pass.

    Args:
        hf_model: A Hugging Face generation model (LLaVA, Qwen2.5-VL, ...).
        tokenizer: Its tokenizer (EOS and pad ids).
        seg_token_id: Id of ``<SEG>``.
        suppress_token_id: A token never generated (the image placeholder: a generated
            one would have no visual features).
        generation_kwargs: Passed to ``generate`` (``max_new_tokens``, ...); they
            override the greedy defaults.
        **model_inputs: ``input_ids`` (N, L) left-padded prompts, ``attention_mask``
            (N, L) and the model's image inputs.

    Returns:
        A dict with ``sequences`` (N, L + T) the prompts followed by the generated ids,
        ``new_tokens`` (N, T) the generated ids (padding after a row's EOS) and
        ``seg_embeds``, N tensors (k_n, D) of the states that predicted the row's
        generated ``<SEG>`` tokens, in order.
    """
    kwargs = dict(
        do_sample=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        suppress_tokens=[suppress_token_id],
    )
    kwargs.update(generation_kwargs)
    kwargs.update(output_hidden_states=True, return_dict_in_generate=True)
    out = hf_model.generate(**model_inputs, **kwargs)
    new_tokens = out.sequences[:, model_inputs['input_ids'].shape[1] :]  # (N, T)
    # step t: a tuple of every layer's states (N, l_t, D), the last one normed
    states = torch.stack([step[-1][:, -1] for step in out.hidden_states], dim=1)  # (N, T, D)
    is_seg = new_tokens == seg_token_id  # (N, T)
    return dict(
        sequences=out.sequences,
        new_tokens=new_tokens,
        seg_embeds=[states[n][is_seg[n]] for n in range(len(states))],
    )


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


def lm_outputs(
    lm_head: nn.Module,
    hidden: torch.Tensor,
    input_ids: torch.Tensor,
    labels: Optional[torch.Tensor],
    seg_token_id: int,
    supervised_logits_only: bool,
) -> dict:
    """A backbone forward's outputs from the language model's final hidden states.

    Args:
        lm_head: The language model head.
        hidden: (B, L, D) final hidden states.
        input_ids: (B, L) the ids they were computed from.
        labels: (B, L) LM labels, or ``None``.
        seg_token_id: Id of ``<SEG>``.
        supervised_logits_only: With labels, compute logits only where they count
            (:func:`supervised_logits`).

    Returns:
        ``hidden_states``, ``input_ids``, ``labels``, ``seg_embeds`` (B tensors (n_i, D))
        and ``logits`` (B, L, V), or the keys of :func:`supervised_logits`.
    """
    result = dict(
        hidden_states=hidden,
        input_ids=input_ids,
        labels=labels,
        seg_embeds=seg_predicting_states(hidden, input_ids, seg_token_id),
    )
    if labels is None or not supervised_logits_only:
        return dict(result, logits=lm_head(hidden))  # (B, L, V)
    return dict(result, **supervised_logits(lm_head, hidden, labels))
