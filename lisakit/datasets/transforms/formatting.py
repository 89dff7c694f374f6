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
)


@TRANSFORMS.register_module()
class PackLISAInputs:
    """Produce ``dict(inputs=..., data_samples=ReasonSegDataSample)``.

    ``inputs`` holds ``input_ids`` and ``labels`` (lists of (L_k,) tensors, one per
    sequence of the sample, from ``TokenizeConversation``), ``sam_image`` and
    ``clip_image``. ``gt_masks`` (n, H, W) uint8, in ``<SEG>`` order across the
    sequences, become a tensor field of the data sample. When a
    sample has no ``img_path`` (generated data), the original image is kept in the
    metainfo as ``ori_img`` so visualizers can draw on it.

    Args:
        meta_keys: Keys of ``results`` copied to the metainfo when present.
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        inputs = {k: results[k] for k in ('input_ids', 'labels', 'sam_image', 'clip_image')}
        for key in ('input_ids', 'labels'):  # one sequence given as a tensor: a list of one
            if isinstance(inputs[key], torch.Tensor):
                inputs[key] = [inputs[key]]
        sample = ReasonSegDataSample()
        if results.get('gt_masks') is not None:
            sample.gt_masks = torch.from_numpy(np.ascontiguousarray(results['gt_masks']))
        meta = {k: results[k] for k in self.meta_keys if k in results}
        if not results.get('img_path'):
            meta['ori_img'] = results['img']
        sample.set_metainfo(meta)
        return dict(inputs=inputs, data_samples=sample)
