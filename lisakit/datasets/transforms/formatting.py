"""Pack a transformed sample into backbone-neutral model inputs and a data sample."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from lisakit.registry import TRANSFORMS
from lisakit.structures import ReasonSegDataSample
from lisakit.utils.constants import IMAGE_TOKEN, SEG_TOKEN
from lisakit.utils.turns import check_image_placeholders

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


def sample_turns(results: dict, name: str) -> list[tuple[str, str]]:
    """A sample's (question, answer) turns: ``results['conversations']`` (a list of
    ``dict(question=, answer=)``), or else ``results['question']`` / ``['answer']``.

    Checked here, where the sample is made (the processor checks again): strings, one
    ``<image>`` in the first question and none after it.

    Raises:
        KeyError: If the sample has no text.
        ValueError: If the ``<image>`` placeholders are misplaced, naming ``name``.
    """
    convs = results.get('conversations')
    if convs is None:
        missing = [k for k in ('question', 'answer') if not isinstance(results.get(k), str)]
        if missing:
            raise KeyError(
                f'{name}: the sample has no text {missing}; a dataset item needs '
                f"'question' (with one {IMAGE_TOKEN}) and 'answer' (one {SEG_TOKEN} per "
                "mask), or 'conversations'."
            )
        turns = [(results['question'], results['answer'])]
    else:
        turns = [(t.get('question'), t.get('answer')) for t in convs]
        if not turns or not all(isinstance(x, str) for t in turns for x in t):
            raise KeyError(
                f"{name}: 'conversations' must be a non-empty list of "
                'dict(question=str, answer=str).'
            )
    check_image_placeholders(turns, name)
    return turns


@TRANSFORMS.register_module()
class PackLISAInputs:
    """Produce ``dict(inputs=..., data_samples=ReasonSegDataSample)``: a neutral sample.

    ``inputs`` holds ``img`` (H, W, 3) uint8 RGB (a tensor) and ``sam_image`` (3, S, S).
    The data sample's metainfo gets ``conversations``: the (question, answer) turns with
    lisakit's ``<image>`` / ``<SEG>`` placeholders (an empty last answer is a generation
    prompt), plus ``meta_keys``. ``gt_masks`` (n, H, W) uint8, one per ``<SEG>`` in turn
    order, become a tensor field. The backbone's processor renders and tokenizes the turns
    and preprocesses ``img`` in the data preprocessor (``model.backbone.processor``). When
    a sample has no ``img_path`` (generated data), the original image is kept in the
    metainfo as ``ori_img`` so visualizers can draw on it.

    Args:
        meta_keys: Keys of ``results`` copied to the metainfo when present.
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        name = results.get('img_path') or f'sample {results.get("sample_idx")}'
        turns = sample_turns(results, name)
        gt_masks = results.get('gt_masks')
        n_seg = sum(a.count(SEG_TOKEN) for _, a in turns)
        if gt_masks is not None and n_seg != len(gt_masks):
            raise ValueError(
                f'{name}: the answer {" / ".join(a for _, a in turns)!r} has {n_seg} '
                f'{SEG_TOKEN} tokens but there are {len(gt_masks)} masks.'
            )
        img = torch.from_numpy(np.ascontiguousarray(results['img']))  # (H, W, 3) uint8
        inputs = dict(img=img, sam_image=results['sam_image'])
        sample = ReasonSegDataSample()
        if gt_masks is not None:
            sample.gt_masks = torch.from_numpy(np.ascontiguousarray(gt_masks))
        meta = {k: results[k] for k in self.meta_keys if k in results}
        meta['conversations'] = turns
        if not results.get('img_path'):
            meta['ori_img'] = results['img']
        sample.set_metainfo(meta)
        return dict(inputs=inputs, data_samples=sample)
