"""Build a model from a config and segment one image with a question (teacher-forced)."""

from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import set_random_seed
from torch import nn

from lisakit.engine.hooks.lean_checkpoint_hook import check_lean_keys
from lisakit.registry import MODELS
from lisakit.structures import ReasonSegDataSample
from lisakit.utils.checkpoint import load_from_lisakit_safe


def init_model(
    config: Union[str, Config], checkpoint: Optional[str] = None, device: str = 'cpu'
) -> nn.Module:
    """Build the model of ``config`` and load ``checkpoint`` (local path) into it.

    Args:
        config: Config file path, a loaded config, or an export folder.
        checkpoint: Optional checkpoint path (``tools/train.py`` output).
        device: Device to put the model on.

    Returns:
        The model in eval mode, with the config attached as ``model.cfg``.
    """
    if isinstance(config, str) and os.path.isdir(config):
        return init_model_from_export(config, device)
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    model = _build(cfg)
    if checkpoint is not None:
        load_weights(model, checkpoint)
    model.cfg = cfg
    return model.to(device).eval()


def load_weights(model: nn.Module, checkpoint: str) -> None:
    """Load a full or lean lisakit checkpoint; every expected key must be present.

    Raises:
        ValueError: Naming missing keys (full checkpoint) or mismatching trainable keys
            (lean checkpoint).
    """
    ckpt = load_from_lisakit_safe(checkpoint, map_location='cpu')
    lean = check_lean_keys(model, ckpt)
    result = model.load_state_dict(ckpt.get('state_dict', ckpt), strict=False)
    if result.missing_keys and not lean:
        raise ValueError(
            f'{checkpoint} lacks {len(result.missing_keys)} keys of this model, '
            f'e.g. {result.missing_keys[:5]}.'
        )


def _build(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` after seeding as the Runner does, so that frozen random
    weights (tiny configs, lean checkpoints) are the ones the model trained with."""
    init_default_scope(cfg.get('default_scope', 'lisakit'))
    randomness = cfg.get('randomness') or {}
    if randomness.get('seed') is not None:
        set_random_seed(**randomness)
    return MODELS.build(cfg.model)


def init_model_from_export(export_dir: str, device: str = 'cpu') -> nn.Module:
    """Rebuild a model from a folder written by ``tools/model_converters/export.py``."""
    from .export import CONFIG_FILE, load_export

    cfg = Config.fromfile(os.path.join(export_dir, CONFIG_FILE))
    model = _build(cfg)
    load_export(model, export_dir)
    model.cfg = cfg
    return model.to(device).eval()


#: Pipeline steps that read annotations; inference has none.
ANNOTATION_STEPS = ('LoadReasonSegAnnotation',)


def inference_model(
    model: nn.Module, image: Union[str, np.ndarray], question: str, answer: Optional[str] = None
) -> ReasonSegDataSample:
    """Segment ``image`` for ``question``.

    Args:
        model: A model from :func:`init_model`.
        image: Image path or an RGB uint8 (H, W, 3) array.
        question: The query; ``<image>\\n`` is prepended when missing.
        answer: ``None`` to let the model write its answer (greedy decoding, one mask per
            generated ``<SEG>``), or a given answer with one ``<SEG>`` per wanted mask
            (teacher-forced, e.g. LISA's ``'<SEG>.'``).

    Returns:
        A data sample with ``pred_masks`` (n, H, W) bool at the image's size and, when
        generating, ``pred_text``.
    """
    if '<image>' not in question:
        question = '<image>\n' + question
    steps = [
        t for t in model.cfg.test_dataloader.dataset.pipeline if t['type'] not in ANNOTATION_STEPS
    ]
    results = dict(question=question, answer=answer or '', sample_idx=0)
    if isinstance(image, str):
        results['img_path'] = image
    else:
        results.update(img=np.ascontiguousarray(image), img_path=None)
    data = model.data_preprocessor(pseudo_collate([Compose(steps)(results)]), False)
    with torch.no_grad():
        if answer is None:
            return model.predict_generate(data['inputs'], data['data_samples'])[0]
        return model(**data, mode='predict')[0]
