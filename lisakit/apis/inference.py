"""Build a model from a config and segment one image with a question (teacher-forced)."""

from __future__ import annotations

from typing import Optional, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from torch import nn

from lisakit.datasets.templates import VAL_ANSWER
from lisakit.registry import MODELS
from lisakit.structures import ReasonSegDataSample
from lisakit.utils.checkpoint import register_checkpoint_loader


def init_model(
    config: Union[str, Config], checkpoint: Optional[str] = None, device: str = 'cpu'
) -> nn.Module:
    """Build the model of ``config`` and load ``checkpoint`` (local path) into it.

    Args:
        config: Config file path or a loaded config.
        checkpoint: Optional checkpoint path (``tools/train.py`` output).
        device: Device to put the model on.

    Returns:
        The model in eval mode, with the config attached as ``model.cfg``.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    init_default_scope(cfg.get('default_scope', 'lisakit'))
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        register_checkpoint_loader()
        load_checkpoint(model, checkpoint, map_location='cpu')
    model.cfg = cfg
    return model.to(device).eval()


def inference_model(
    model: nn.Module, image: Union[str, np.ndarray], question: str, answer: str = VAL_ANSWER
) -> ReasonSegDataSample:
    """Segment ``image`` for ``question`` with LISA's teacher-forced answer.

    Args:
        model: A model from :func:`init_model`.
        image: Image path or an RGB uint8 (H, W, 3) array.
        question: The query; ``<image>\\n`` is prepended when missing.
        answer: The assistant answer, one ``<SEG>`` per wanted mask.

    Returns:
        A data sample with ``pred_masks`` (n, H, W) bool.
    """
    if '<image>' not in question:
        question = '<image>\n' + question
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    results = dict(question=question, answer=answer, sample_idx=0)
    if isinstance(image, str):
        results['img_path'] = image
    else:
        results.update(img=np.ascontiguousarray(image), img_path=None)
    data = model.data_preprocessor(pseudo_collate([pipeline(results)]), False)
    with torch.no_grad():
        return model(**data, mode='predict')[0]
