"""LISA's sample layout: several one-turn sequences per image (LISA's ``offset``).

A batch holds B samples (images) and N >= B token sequences. ``seq_to_sample`` (N,)
names the sample of each sequence, non-decreasing, every sample with at least one
sequence: LISA's ``offset`` tensor written per sequence (``offset = [0, 3, 5]`` is
``seq_to_sample = [0, 0, 0, 1, 1]``). Without it every sample is one sequence.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

#: The key of the sequence -> sample index in a batch's ``inputs``.
SEQ_TO_SAMPLE = 'seq_to_sample'


def sequence_samples(inputs: dict, num_samples: int) -> torch.Tensor:
    """The sample index (N,) int64 of every sequence of ``inputs``, checked.

    Args:
        inputs: A batch with ``input_ids`` (N, L) and optionally ``seq_to_sample`` (N,).
        num_samples: B, the number of samples (images) of the batch.

    Returns:
        ``inputs['seq_to_sample']``, or ``arange(B)`` when absent (then N must equal B).

    Raises:
        ValueError: When the index does not fit the batch, naming the key.
    """
    num_seqs = inputs['input_ids'].shape[0]
    device = inputs['input_ids'].device
    index = inputs.get(SEQ_TO_SAMPLE)
    if index is None:
        if num_seqs != num_samples:
            raise ValueError(
                f'inputs hold {num_seqs} sequences for {num_samples} samples but no '
                f'{SEQ_TO_SAMPLE!r}; give {SEQ_TO_SAMPLE} (N,) naming the sample of each '
                'sequence, or one sequence per sample.'
            )
        return torch.arange(num_samples, device=device)
    index = torch.as_tensor(index, device=device).long()
    covered = torch.bincount(index.clamp(0, max(num_samples - 1, 0)), minlength=num_samples)
    if (
        index.shape != (num_seqs,)
        or bool((index < 0).any() or (index >= num_samples).any())
        or bool((index[1:] < index[:-1]).any())
        or bool((covered[:num_samples] == 0).any())
    ):
        raise ValueError(
            f'inputs[{SEQ_TO_SAMPLE!r}]={index.tolist()} must be ({num_seqs},) sample indices '
            f'in [0, {num_samples}), non-decreasing, with every sample present (one or more '
            'sequences per image, in sample order).'
        )
    return index


def is_one_per_sample(seq_to_sample: torch.Tensor) -> bool:
    """True when every sample is a single sequence (N == B, index = arange)."""
    return bool(
        torch.equal(seq_to_sample, torch.arange(len(seq_to_sample), device=seq_to_sample.device))
    )


def fill_rows(feats: Any, keep: Sequence[int], total: int) -> Any:
    """Features of ``len(keep)`` images (a tensor or a dict of tensors, rows first) placed
    at rows ``keep`` of ``total`` all-zero rows."""
    if isinstance(feats, dict):
        return {k: fill_rows(v, keep, total) for k, v in feats.items()}
    out = feats.new_zeros((total, *feats.shape[1:]))
    out[keep] = feats
    return out


def sample_counts(
    seq_counts: torch.Tensor, seq_to_sample: torch.Tensor, num_samples: int
) -> list[int]:
    """Per-sample totals (B,) of per-sequence counts (N,), e.g. ``<SEG>`` tokens."""
    totals = seq_counts.new_zeros(num_samples).index_add_(0, seq_to_sample, seq_counts)
    return totals.tolist()


def group_rows(
    rows: Sequence[torch.Tensor], seq_to_sample: torch.Tensor, num_samples: int
) -> list[torch.Tensor]:
    """Concatenate per-sequence (n_j, ...) tensors into per-sample ones, in sequence order.

    Args:
        rows: N tensors, e.g. the ``<SEG>`` states (n_j, D) of each sequence.
        seq_to_sample: (N,) sample of each sequence (non-decreasing).
        num_samples: B.

    Returns:
        B tensors (sum of the n_j of the sample's sequences, ...).
    """
    groups: list[list[torch.Tensor]] = [[] for _ in range(num_samples)]
    for row, sample in zip(rows, seq_to_sample.tolist()):
        groups[sample].append(row)
    return [torch.cat(g) if len(g) > 1 else g[0] for g in groups]


def sample_mean(
    values: torch.Tensor, seq_to_sample: torch.Tensor, num_samples: int
) -> torch.Tensor:
    """Mean (B,) over each sample's sequences of per-sequence values (N,)."""
    total = values.new_zeros(num_samples).index_add_(0, seq_to_sample, values)
    count = values.new_zeros(num_samples).index_add_(0, seq_to_sample, torch.ones_like(values))
    return total / count


def match_count(rows: torch.Tensor, n: int) -> torch.Tensor:
    """(k, ...) predictions cut, or padded with zeros (empty masks, IoU 0), to (n, ...)."""
    if len(rows) >= n:
        return rows[:n]
    return torch.cat([rows, rows.new_zeros((n - len(rows), *rows.shape[1:]))])


def match_to_targets(
    parts: Sequence[torch.Tensor], wanted: Sequence[int], total: int
) -> torch.Tensor:
    """One sample's generated predictions, one per target, in target order.

    Args:
        parts: Per sequence, the (k_j, ...) predictions of its generated ``<SEG>`` tokens.
        wanted: Per sequence, the ``<SEG>`` count of its given (teacher) answer.
        total: The sample's number of targets.

    Returns:
        (total, ...): each sequence's predictions cut or padded to its ``wanted`` count
        when those add up to ``total`` (a missing mask of one query then never shifts
        the next query's masks onto the wrong targets); otherwise the concatenation cut
        or padded as a whole.
    """
    if sum(wanted) == total:
        parts = [match_count(p, k) for p, k in zip(parts, wanted)]
    return match_count(torch.cat(list(parts)), total)


def left_padded_prompts(
    input_ids: torch.Tensor, labels: torch.Tensor, pad_id: int, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The prompt of each sequence (its ids up to the first supervised label), left-padded.

    Args:
        input_ids: (N, L) right-padded sequences.
        labels: (N, L) their labels, ``ignore_index`` where not supervised.
        pad_id: Id written in the padding.
        ignore_index: The unsupervised label value.

    Returns:
        ``(ids, mask)`` (N, P), P the longest prompt: each prompt ends at column P - 1
        (generation continues all rows at the same position) and ``mask`` is 0 on the
        padding before it.
    """
    supervised = labels != ignore_index  # (N, L)
    length = input_ids.shape[1]
    starts = torch.where(supervised.any(1), supervised.int().argmax(1), length).tolist()  # N
    width = max(starts)
    ids = input_ids.new_full((len(starts), width), pad_id)
    mask = input_ids.new_zeros((len(starts), width))
    for n, start in enumerate(starts):
        ids[n, width - start :] = input_ids[n, :start]
        mask[n, width - start :] = 1
    return ids, mask


def fill_generated(
    data_samples: Sequence,
    preds: Sequence[tuple[torch.Tensor, torch.Tensor]],
    texts: Sequence[str],
    seq_k: Sequence[int],
    given: Sequence[int],
    seq_to_sample: Sequence[int],
) -> None:
    """Write generated answers into their samples (``pred_text``, ``num_generated_seg``,
    ``pred_masks``, ``pred_iou_scores``).

    Args:
        data_samples: The B samples.
        preds: Per sample, its (n_i, H, W) bool masks and (n_i,) IoUs, the masks of its
            sequences concatenated in order.
        texts: Per sequence, its generated answer.
        seq_k: Per sequence, the number of ``<SEG>`` it generated (sum per sample: n_i).
        given: Per sequence, the ``<SEG>`` count of its given answer.
        seq_to_sample: Per sequence, its sample.

    With targets, each sample keeps one prediction per target (see
    :func:`match_to_targets`) and its ``gt_masks`` move to the CPU for the metric.
    """
    for i, (ds, (masks, ious)) in enumerate(zip(data_samples, preds)):
        seqs = [n for n, j in enumerate(seq_to_sample) if j == i]
        ds.pred_text = '\n'.join(texts[n] for n in seqs)
        ds.num_generated_seg = len(masks)
        if 'gt_masks' in ds:  # one prediction per target (IoU 0 for padding)
            split, wanted = [seq_k[n] for n in seqs], [given[n] for n in seqs]
            masks = match_to_targets(masks.split(split), wanted, len(ds.gt_masks))
            ious = match_to_targets(ious.split(split), wanted, len(ds.gt_masks))
            ds.gt_masks = ds.gt_masks.cpu()
        ds.pred_masks, ds.pred_iou_scores = masks, ious
