"""Batch LISA inputs: flatten and pad token sequences, stack images, move to the device."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor
from torch.nn.utils.rnn import pad_sequence

from lisakit.registry import MODELS
from lisakit.utils.constants import LM_IGNORE_INDEX


def _sequences(
    item: Union[torch.Tensor, Sequence[torch.Tensor]], lengths: Optional[torch.Tensor]
) -> list[torch.Tensor]:
    """A sample's sequences: split at ``lengths`` (``PackLISAInputs``), a list of 1-D
    tensors, or one 1-D tensor (one sequence)."""
    if lengths is not None:
        return list(torch.split(item, lengths.tolist()))
    if isinstance(item, torch.Tensor):
        return [item]
    return list(item)


@MODELS.register_module()
class LISADataPreprocessor(BaseDataPreprocessor):
    """Collate per-sample LISA inputs into batch tensors.

    Input (from ``pseudo_collate`` of ``PackLISAInputs`` outputs; sample i has n_i
    sequences, one per query in LISA's layout)::

        dict(inputs=dict(input_ids=[(sum_k L_ik,)], labels=[(sum_k L_ik,)],
                         seq_lengths=[(n_i,)], sam_image=[(3, S, S)],
                         clip_image=[(3, s, s)]),
             data_samples=[ReasonSegDataSample, ...])

    (without ``seq_lengths``, each ``input_ids`` / ``labels`` entry is one sequence or a
    list of sequences).

    Output ``inputs`` (N = sum of n_i sequences, B samples), on the model's device:

    - ``input_ids`` / ``labels`` / ``attention_mask``: (N, L_max), right-padded, the
      sequences of all samples in order (LISA's ``offset`` layout);
    - ``seq_to_sample``: (N,) int64, non-decreasing, the sample of each sequence;
    - ``sam_images``: (B, 3, S, S), one per sample (SAM encodes each image once);
    - ``clip_images``: (B, 3, s, s), one per sample (index with ``seq_to_sample``).

    Args:
        pad_token_id: Id used for padding (masked out by ``attention_mask``).
        non_blocking: Non-blocking device copies.
    """

    def __init__(self, pad_token_id: int = 0, non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)
        self.pad_token_id = pad_token_id

    def forward(self, data: dict, training: bool = False) -> dict:
        """Flatten, pad, stack and move a collated batch."""
        inputs = data['inputs']
        missing = {'input_ids', 'labels', 'sam_image', 'clip_image'} - set(inputs)
        if missing:
            raise KeyError(
                f'Batch inputs lack {sorted(missing)}; end the pipeline with '
                'PackLISAInputs after TokenizeConversation, SAMPreprocess and '
                'CLIPPreprocess.'
            )
        seq_lengths = inputs.get('seq_lengths') or [None] * len(inputs['input_ids'])
        per_sample = [_sequences(x, n) for x, n in zip(inputs['input_ids'], seq_lengths)]
        ids = [seq for seqs in per_sample for seq in seqs]
        labels = [s for x, n in zip(inputs['labels'], seq_lengths) for s in _sequences(x, n)]
        if [len(x) for x in ids] != [len(x) for x in labels]:
            raise ValueError('input_ids and labels must hold sequences of the same lengths.')
        seq_to_sample = torch.cat(
            [torch.full((len(seqs),), i, dtype=torch.long) for i, seqs in enumerate(per_sample)]
        )  # (N,)
        lengths = torch.tensor([len(x) for x in ids])
        batch = dict(
            input_ids=pad_sequence(ids, batch_first=True, padding_value=self.pad_token_id),
            labels=pad_sequence(labels, batch_first=True, padding_value=LM_IGNORE_INDEX),
            attention_mask=(torch.arange(int(lengths.max()))[None] < lengths[:, None]).long(),
            seq_to_sample=seq_to_sample,
            sam_images=torch.stack(inputs['sam_image']),
            clip_images=torch.stack(inputs['clip_image']),
        )
        data_samples: Optional[list] = data.get('data_samples')
        return dict(inputs=self.cast_data(batch), data_samples=self.cast_data(data_samples))
