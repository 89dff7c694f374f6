"""Run the backbone's processor on a dataset item as the data preprocessor does (tests of
datasets whose text the processor renders)."""

from typing import Optional

import numpy as np

from lisakit.datasets.transforms import PackLISAInputs
from lisakit.models.data_preprocessors.lisa_data_preprocessor import drop_truncated_masks
from lisakit.models.processors import LlavaProcessor
from lisakit.registry import PROCESSORS
from lisakit.utils.constants import SEG_TOKEN


def word_processor(tokenizer: Optional[dict] = None, **kwargs) -> LlavaProcessor:
    """A LLaVA processor on the word tokenizer with one image feature (``max_length``
    counts text only) and an 8 px CLIP, ``template='plain'`` unless given."""
    kwargs = {'template': 'plain', 'num_image_features': 1, 'image_size': 8, **kwargs}
    return LlavaProcessor(tokenizer or dict(type='WordTokenizer'), **kwargs)


def tiny_processor(tiny_cfg, **overrides) -> LlavaProcessor:
    """The demo model's processor (``model.backbone.processor`` of ``tiny_cfg``) with the
    image facts its backbone reads from the tiny CLIP config (16 features, 32 px)."""
    vision = tiny_cfg.model.backbone.llava_config.vision_config
    cfg = dict(
        tiny_cfg.model.backbone.processor.to_dict(),
        type='LlavaProcessor',
        num_image_features=(vision.image_size // vision.patch_size) ** 2,
        image_size=vision.image_size,
    )
    return PROCESSORS.build(dict(cfg, **overrides))


def process(processor: LlavaProcessor, results: dict) -> dict:
    """``processor`` on the neutral sample of ``results`` (a transformed dataset item; a
    blank image and no SAM input when it has none): see :func:`process_packed`."""
    results = dict(results)
    results.setdefault('img', np.zeros((8, 8, 3), np.uint8))
    results.setdefault('sam_image', None)
    return process_packed(processor, PackLISAInputs()(results))


def process_packed(processor: LlavaProcessor, packed: dict) -> dict:
    """``processor`` on a packed sample (``PackLISAInputs``), as the data preprocessor runs it.

    Returns:
        The processor's output plus ``data_sample``: the packed sample with the masks of
        truncated ``<SEG>`` dropped (and counted in ``truncated_masks``).
    """
    sample = packed['data_samples']
    turns = sample.conversations
    out = processor(packed['inputs']['img'], turns, sample.metainfo.get('query_type'))
    drop_truncated_masks(sample, out['kept_masks'], sum(a.count(SEG_TOKEN) for _, a in turns))
    out['data_sample'] = sample
    return out
