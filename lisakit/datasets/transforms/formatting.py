"""Pack a transformed sample into model inputs and a data sample."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from lisakit.registry import TRANSFORMS
from lisakit.structures import ReasonSegDataSample

#: Meta keys copied into the data sample by default.
DEFAULT_META_KEYS = (
    'sample_idx',
    'img_path',
    'ori_shape',
    'sam_resize',
    'question',
    'answer',
    'query_type',
    'is_sentence',
    'num_targets',
    'no_target',
)


def as_sequences(value) -> list[torch.Tensor]:
    """A sample's token sequences: a list of 1-D tensors (one tensor is a list of one)."""
    return [value] if isinstance(value, torch.Tensor) else list(value)


@TRANSFORMS.register_module()
class PackLISAInputs:
    """Produce ``dict(inputs=..., data_samples=ReasonSegDataSample)``.

    ``inputs`` holds ``input_ids`` and ``labels``: the sample's sequences (the lists of
    (L_k,) tensors of ``TokenizeConversation``, one per query) concatenated into one
    (sum L_k,) tensor, with ``seq_lengths`` (n,) giving each sequence's length (a list
    would be transposed by mmengine's ``pseudo_collate``); ``sam_image`` and
    ``clip_image``. With one sequence, ``input_ids`` is that sequence. ``gt_masks``
    (n, H, W) uint8, in ``<SEG>`` order across the sequences, become a tensor field of
    the data sample. When a sample has no ``img_path`` (generated data), the original
    image is kept in the metainfo as ``ori_img`` so visualizers can draw on it.

    Args:
        meta_keys: Keys of ``results`` copied to the metainfo when present.
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        inputs = {k: results[k] for k in ('sam_image', 'clip_image')}
        ids, labels = (as_sequences(results[k]) for k in ('input_ids', 'labels'))
        inputs['input_ids'] = torch.cat(ids)  # (sum L_k,)
        inputs['labels'] = torch.cat(labels)
        inputs['seq_lengths'] = torch.tensor([len(x) for x in ids], dtype=torch.long)  # (n,)
        sample = ReasonSegDataSample()
        if results.get('gt_masks') is not None:
            sample.gt_masks = torch.from_numpy(np.ascontiguousarray(results['gt_masks']))
        meta = {k: results[k] for k in self.meta_keys if k in results}
        if not results.get('img_path'):
            meta['ori_img'] = results['img']
        sample.set_metainfo(meta)
        return dict(inputs=inputs, data_samples=sample)
