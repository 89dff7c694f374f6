"""Batch LISA inputs: pad token sequences, stack images, move to the device."""

from __future__ import annotations

from typing import Optional

import torch
from mmengine.model import BaseDataPreprocessor
from torch.nn.utils.rnn import pad_sequence

from lisakit.registry import MODELS
from lisakit.utils.constants import LM_IGNORE_INDEX


@MODELS.register_module()
class LISADataPreprocessor(BaseDataPreprocessor):
    """Collate per-sample LISA inputs into batch tensors.

    Input (from ``pseudo_collate`` of ``PackLISAInputs`` outputs)::

        dict(inputs=dict(input_ids=[(L_i,)], labels=[(L_i,)],
                         sam_image=[(3, S, S)], clip_image=[(3, s, s)]),
             data_samples=[ReasonSegDataSample, ...])

    Output: ``inputs`` with ``input_ids`` / ``labels`` / ``attention_mask``
    (B, L_max) right-padded, ``sam_images`` (B, 3, S, S), ``clip_images``
    (B, 3, s, s), all on the model's device.

    Args:
        pad_token_id: Id used for padding (masked out by ``attention_mask``).
        non_blocking: Non-blocking device copies.
    """

    def __init__(self, pad_token_id: int = 0, non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)
        self.pad_token_id = pad_token_id

    def forward(self, data: dict, training: bool = False) -> dict:
        """Pad, stack and move a collated batch."""
        inputs = data['inputs']
        missing = {'input_ids', 'labels', 'sam_image', 'clip_image'} - set(inputs)
        if missing:
            raise KeyError(
                f'Batch inputs lack {sorted(missing)}; end the pipeline with '
                'PackLISAInputs after TokenizeConversation, SAMPreprocess and '
                'CLIPPreprocess.'
            )
        ids = inputs['input_ids']
        lengths = torch.tensor([len(x) for x in ids])
        batch = dict(
            input_ids=pad_sequence(ids, batch_first=True, padding_value=self.pad_token_id),
            labels=pad_sequence(inputs['labels'], batch_first=True, padding_value=LM_IGNORE_INDEX),
            attention_mask=(torch.arange(int(lengths.max()))[None] < lengths[:, None]).long(),
            sam_images=torch.stack(inputs['sam_image']),
            clip_images=torch.stack(inputs['clip_image']),
        )
        data_samples: Optional[list] = data.get('data_samples')
        return dict(inputs=self.cast_data(batch), data_samples=self.cast_data(data_samples))
