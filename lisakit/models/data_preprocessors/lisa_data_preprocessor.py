"""Batch LISA inputs: run the backbone's processor per sample, pad, stack, move to device."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor
from torch.nn.utils.rnn import pad_sequence

from lisakit.registry import MODELS, PROCESSORS
from lisakit.utils.constants import LM_IGNORE_INDEX, SEG_TOKEN

#: The neutral inputs of ``PackLISAInputs``.
NEUTRAL_KEYS = ('img', 'sam_image')


@MODELS.register_module()
class LISADataPreprocessor(BaseDataPreprocessor):
    """Turn a batch of neutral samples into the backbone's inputs.

    Input (``pseudo_collate`` of ``PackLISAInputs`` outputs, B samples)::

        dict(inputs=dict(img=[(H_i, W_i, 3) uint8], sam_image=[(3, S, S)]),
             data_samples=[ReasonSegDataSample with metainfo 'conversations', ...])

    For each sample the processor (the backbone's, linked by the segmentor:
    ``LISA.__init__`` sets ``data_preprocessor.processor = backbone.processor``) renders
    and tokenizes the turns into n_i sequences and preprocesses the image. Masks whose
    ``<SEG>`` was cut off by the processor's length limit are dropped from ``gt_masks``
    and counted in the metainfo ``truncated_masks``.

    Output ``inputs`` (N = sum of n_i sequences), on the model's device:

    - ``input_ids`` / ``labels`` / ``attention_mask``: (N, L_max), right-padded, the
      sequences of all samples in order (LISA's ``offset`` layout);
    - ``seq_to_sample``: (N,) int64, non-decreasing, the sample of each sequence;
    - ``sam_images``: (B, 3, S, S), one per sample (SAM encodes each image once);
    - ``vision``: the backbone's per-sequence vision inputs
      (``processor.collate_vision``, e.g. LLaVA ``pixel_values`` (N, 3, s, s)).

    Args:
        processor: The processor, or its config (``PROCESSORS``); ``None`` until the
            segmentor links the backbone's.
        pad_token_id: Id used for padding (masked out by ``attention_mask``); ``None``:
            the processor's.
        non_blocking: Non-blocking device copies.
    """

    def __init__(
        self,
        processor: Optional[Union[dict, object]] = None,
        pad_token_id: Optional[int] = None,
        non_blocking: bool = False,
    ) -> None:
        super().__init__(non_blocking=non_blocking)
        self.processor = PROCESSORS.build(processor) if isinstance(processor, dict) else processor
        self.pad_token_id = pad_token_id

    def _check(self, data: dict) -> None:
        missing = set(NEUTRAL_KEYS) - set(data['inputs'])
        if missing or data.get('data_samples') is None:
            raise KeyError(
                f'Batch inputs lack {sorted(missing) or "data_samples"}; end the pipeline with '
                'PackLISAInputs (it emits img, sam_image and the conversations).'
            )
        if self.processor is None:
            raise ValueError(
                'LISADataPreprocessor has no processor: the LISA segmentor links its '
                "backbone's (model.backbone.processor); a data preprocessor used on its own "
                'needs processor=dict(type=...).'
            )

    def process(self, images: Sequence, data_samples: Sequence) -> tuple[list, list, list]:
        """Run the processor on every sample: per-sample sequences (ids, labels) and vision
        dicts; drops the masks of truncated ``<SEG>`` from the data samples."""
        ids, labels, visions = [], [], []
        for i, (image, ds) in enumerate(zip(images, data_samples)):
            name = ds.metainfo.get('img_path') or f'sample {ds.metainfo.get("sample_idx", i)}'
            turns = ds.metainfo['conversations']
            out = self.processor(image, turns, ds.metainfo.get('query_type'), name=name)
            drop_truncated_masks(ds, out['kept_masks'], sum(a.count(SEG_TOKEN) for _, a in turns))
            ids.append(out['input_ids'])
            labels.append(out['labels'])
            visions.append(out['vision'])
        return ids, labels, visions

    def forward(self, data: dict, training: bool = False) -> dict:
        """Process, flatten, pad, stack and move a collated batch."""
        self._check(data)
        inputs, data_samples = data['inputs'], data['data_samples']
        per_ids, per_labels, visions = self.process(inputs['img'], data_samples)
        ids = [seq for seqs in per_ids for seq in seqs]
        labels = [seq for seqs in per_labels for seq in seqs]
        seq_to_sample = torch.cat(
            [torch.full((len(seqs),), i, dtype=torch.long) for i, seqs in enumerate(per_ids)]
        )  # (N,)
        lengths = torch.tensor([len(x) for x in ids])
        pad = self.processor.pad_token_id if self.pad_token_id is None else self.pad_token_id
        batch = dict(
            input_ids=pad_sequence(ids, batch_first=True, padding_value=pad),
            labels=pad_sequence(labels, batch_first=True, padding_value=LM_IGNORE_INDEX),
            attention_mask=(torch.arange(int(lengths.max()))[None] < lengths[:, None]).long(),
            seq_to_sample=seq_to_sample,
            sam_images=torch.stack(list(inputs['sam_image'])),
            vision=self.processor.collate_vision(visions, seq_to_sample),
        )
        return dict(inputs=self.cast_data(batch), data_samples=self.cast_data(data_samples))


def drop_truncated_masks(data_sample, kept: Sequence[int], num_seg: int) -> None:
    """Keep the ``gt_masks`` whose ``<SEG>`` survived (``kept``, ``<SEG>`` order) and count
    the others in the metainfo ``truncated_masks`` (LISA would fail on them)."""
    if len(kept) == num_seg:
        return
    data_sample.set_metainfo(dict(truncated_masks=num_seg - len(kept)))
    if 'gt_masks' in data_sample:
        data_sample.gt_masks = data_sample.gt_masks[torch.as_tensor(list(kept), dtype=torch.long)]
