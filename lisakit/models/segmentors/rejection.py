"""Rejection ("no such object"): GSVA's ``[REJ]`` token, read from generated answers or
decided at the first answer position.

A model whose processor (or tokenizer) holds the rejection token (``REJ_TOKEN``, added
when the config names ``rej_token``) marks every predicted sample with
``pred_rejected`` (bool):

- generated answers: a sequence rejects when its answer holds the rejection token (or one
  of the configured rejection texts) and no ``<SEG>``;
- teacher-forced validation: the model's own choice at the position that predicts the
  given answer's first ``<SEG>`` / ``[REJ]`` (its first token when it has neither), the
  argmax of its logits restricted to ``{<SEG>, [REJ]}`` (causal: that position does not
  see the token it predicts).

A sample rejects when every one of its sequences does; its masks are then emptied:
(0, H, W) without targets (inference), one all-False mask per target with targets (the
generate mode's convention for a missing mask, so every metric compares one prediction
per target). ``GRefCOCOMetric`` reads ``pred_rejected``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from lisakit.utils.constants import LM_IGNORE_INDEX, REJ_TOKEN


def rej_token_id(backbone) -> Optional[int]:
    """The rejection token's id of a backbone, or None when it has none.

    The backbone's processor states it (``processor.rej_token_id``); a backbone without
    a processor is asked through its tokenizer (``REJ_TOKEN`` in the vocabulary).
    """
    processor = getattr(backbone, 'processor', None)
    if processor is not None and hasattr(processor, 'rej_token_id'):
        return processor.rej_token_id
    tokenizer = getattr(backbone, 'tokenizer', None)
    if tokenizer is None:
        return None
    return tokenizer.get_vocab().get(REJ_TOKEN)


def _normalized(text: str) -> str:
    return ' '.join(text.lower().split())


def generated_rejections(
    new_tokens: torch.Tensor,
    texts: Sequence[str],
    seg_id: int,
    rej_id: Optional[int],
    reject_texts: Sequence[str] = (),
) -> list[bool]:
    """Per generated sequence: whether its answer is a rejection.

    Args:
        new_tokens: (N, T) generated ids.
        texts: N decoded answers.
        seg_id: Id of ``<SEG>``.
        rej_id: Id of the rejection token, or None.
        reject_texts: Rejection answers in text (compared lower-cased, with spaces
            normalized, as substrings of the answer).

    Returns:
        N bools: no ``<SEG>`` and (the rejection token or a rejection text).
    """
    has_seg = (new_tokens == seg_id).any(1).tolist()  # N
    has_rej = [False] * len(texts) if rej_id is None else (new_tokens == rej_id).any(1).tolist()
    wanted = [_normalized(t) for t in reject_texts if t.strip()]
    said = [any(w in _normalized(t) for w in wanted) for t in texts]
    return [not s and (r or t) for s, r, t in zip(has_seg, has_rej, said)]


def first_answer_choices(lm: dict, seg_id: int, rej_id: int) -> list[Optional[bool]]:
    """Per sequence: whether the logits at the decision position rank the rejection token
    above ``<SEG>`` (None for a sequence without a supervised answer).

    The decision position is the one that predicts the given answer's first ``<SEG>`` or
    rejection token (an answer may restate the query first, e.g. ``"red <SEG>."``), else
    its first token. It does not see that token (causal).

    Args:
        lm: Backbone outputs: ``labels`` (N, L) and either ``logits`` (N, L, V) or the
            supervised selection ``logits`` (M, V) with ``logits_batch_index`` (M,).
        seg_id: Id of ``<SEG>``.
        rej_id: Id of the rejection token.
    """
    labels = lm['labels']  # (N, L)
    if lm.get('logits_batch_index') is not None:  # (M, V) rows in row-major order
        rows = lm['logits_batch_index']  # (M,)
        targets = labels[:, 1:][labels[:, 1:] != LM_IGNORE_INDEX]  # (M,) the rows' labels
        logits = lm['logits']
    else:
        rows, pos = (labels[:, 1:] != LM_IGNORE_INDEX).nonzero(as_tuple=True)  # (M,)
        targets = labels[rows, pos + 1]
        logits = lm['logits'][rows, pos]  # (M, V): position t predicts t + 1
    decisive = (targets == seg_id) | (targets == rej_id)  # (M,)
    out: list[Optional[bool]] = [None] * labels.shape[0]
    for n in range(labels.shape[0]):
        mine = (rows == n).nonzero().flatten()
        if len(mine) == 0:
            continue
        hits = mine[decisive[mine]]
        row = int(hits[0] if len(hits) else mine[0])
        out[n] = bool(logits[row, rej_id] > logits[row, seg_id])
    return out


def sample_rejections(
    seq_rejected: Sequence[Optional[bool]], seq_to_sample: Sequence[int], num_samples: int
) -> list[bool]:
    """Per sample: True when every one of its sequences (with a decision) rejects."""
    votes: list[list[bool]] = [[] for _ in range(num_samples)]
    for rejected, sample in zip(seq_rejected, seq_to_sample):
        if rejected is not None:
            votes[sample].append(bool(rejected))
    return [bool(v) and all(v) for v in votes]


def mark_rejections(data_samples: Sequence, rejected: Sequence[bool]) -> None:
    """Write ``pred_rejected`` and empty the masks (and IoU scores) of rejected samples:
    (0, H, W) without targets, one all-False mask per target with them."""
    for ds, flag in zip(data_samples, rejected):
        ds.pred_rejected = bool(flag)
        if not flag:
            continue
        masks = ds.pred_masks  # (n, H, W)
        keep = len(ds.gt_masks) if 'gt_masks' in ds else 0
        ds.pred_masks = masks.new_zeros((keep, *masks.shape[1:]))
        ds.pred_iou_scores = ds.pred_iou_scores.new_zeros((keep,))


def reject_teacher_forced(
    data_samples: Sequence, lm: dict, seg_id: int, rej_id: Optional[int]
) -> None:
    """Teacher-forced prediction: mark samples by the first-answer-position choice
    (nothing when the model has no rejection token)."""
    if rej_id is None:
        return
    choices = first_answer_choices(lm, seg_id, rej_id)
    seq_to_sample = lm['seq_to_sample'].tolist()
    mark_rejections(data_samples, sample_rejections(choices, seq_to_sample, len(data_samples)))


def reject_generated(
    data_samples: Sequence,
    out: dict,
    texts: Sequence[str],
    seq_to_sample: Sequence[int],
    seg_id: int,
    rej_id: Optional[int],
    reject_texts: Sequence[str] = (),
) -> None:
    """Generate-mode prediction: mark samples by their generated answers (nothing when the
    model has neither a rejection token nor rejection texts)."""
    if rej_id is None and not reject_texts:
        return
    seqs = generated_rejections(out['new_tokens'], texts, seg_id, rej_id, reject_texts)
    mark_rejections(data_samples, sample_rejections(seqs, seq_to_sample, len(data_samples)))
