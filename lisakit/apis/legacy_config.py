"""Model folders written before the processor seam (lisakit 0.x exports and conversions).

Their ``lisakit_config.py`` lists ``TokenizeConversation`` / ``CLIPPreprocess`` in the data
pipelines: the text and image conventions that ``model.backbone.processor`` holds now.
:func:`migrate_removed_steps` moves those settings into the processor config and deletes
the steps, so that such a folder still loads (a config file of one's own gets the error that
names the fix instead).
"""

from __future__ import annotations

import logging
from typing import Any

from mmengine.config import Config
from mmengine.logging import print_log

from lisakit.datasets.transforms.conversation import MIGRATION_HINTS

#: Pipeline steps whose work moved into the backbone's processor (the datasets' removed steps).
REMOVED_STEPS = tuple(MIGRATION_HINTS)
#: ``TokenizeConversation`` arguments that are processor settings now (``num_image_features``
#: and the CLIP size, mean and std come from the backbone's model config; ``seg_token`` from
#: the backbone).
TEXT_SETTINGS = (
    'tokenizer',
    'template',
    'max_length',
    'layout',
    'text_encoding',
    'use_im_start_end',
    'dialogue_query_types',
)
#: ``CLIPPreprocess`` argument -> processor key.
IMAGE_SETTINGS = {'backend': 'backend', 'pretrained': 'image_processor'}
#: Loaders searched for the settings, the test loader (what inference uses) first.
LOADERS = ('test_dataloader', 'val_dataloader', 'train_dataloader')


def _pipelines(node: Any) -> list[list]:
    """Every ``pipeline`` list in a (nested) dataset config."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get('pipeline'), list):
            found.append(node['pipeline'])
        for value in node.values():
            found += _pipelines(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            found += _pipelines(value)
    return found


def _settings(step: dict) -> dict:
    """The processor settings a removed step held (``None`` values left out)."""
    if step['type'] == 'TokenizeConversation':
        keys = {k: k for k in TEXT_SETTINGS}
    else:
        keys = IMAGE_SETTINGS
    return {new: step[old] for old, new in keys.items() if step.get(old) is not None}


def migrate_removed_steps(cfg: Config, source: str = 'the config') -> bool:
    """Move the settings of removed pipeline steps into ``model.backbone.processor``
    (keys already set there win; the backbone's own ``tokenizer`` wins) and delete the
    steps from every loader. Edits ``cfg`` in place.

    Returns:
        Whether anything changed (a warning naming ``source`` is logged then).
    """
    pipelines = [p for loader in LOADERS for p in _pipelines(cfg.get(loader))]
    steps = [s for p in pipelines for s in p if s.get('type') in REMOVED_STEPS]
    if not steps:
        return False
    backbone = cfg.model.backbone
    processor = dict(backbone.get('processor') or {})
    for step in steps:  # the first step of a kind (test loader first) wins
        for key, value in _settings(step).items():
            processor.setdefault(key, value)
    if backbone.get('tokenizer') is not None:
        processor.pop('tokenizer', None)  # the backbone's (deprecated) tokenizer key wins
    backbone.processor = processor
    for pipeline in pipelines:
        pipeline[:] = [s for s in pipeline if s.get('type') not in REMOVED_STEPS]
    print_log(
        f'{source} was written before the processor seam: its {sorted({s["type"] for s in steps})}'
        f' settings moved to model.backbone.processor={processor} and the steps were '
        'deleted (re-export or re-convert to update the file).',
        logger='current',
        level=logging.WARNING,
    )
    return True
