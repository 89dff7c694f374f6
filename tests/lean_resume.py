"""Lean checkpoints and exact resume of a tiny demo, with lisakit's Runner in this process
(as ``tools/train.py`` builds it; seconds instead of a minute per run in a subprocess)."""

import copy
import json
import uuid
from typing import Optional

import torch
from mmengine.config import Config

from lisakit.engine.runtime import build_runner, setup_runtime

#: Short runs: 2 iterations of 4 samples per epoch, 4 val samples, no worker processes;
#: the cosine schedule spans 2 epochs, so a 1-epoch run stops as if interrupted.
SHORT = {
    'train_dataloader.dataset.num_samples': 8,
    'val_dataloader.dataset.num_samples': 4,
    'train_dataloader.batch_size': 4,
    'val_dataloader.batch_size': 4,
    'param_scheduler.0.end': 2,
    'default_hooks.visualization.draw': False,
    'custom_hooks': [dict(type='TrainingHistoryHook'), dict(type='LeanCheckpointHook')],
}
for _loader in ('train_dataloader', 'val_dataloader'):
    SHORT[f'{_loader}.num_workers'] = 0
    SHORT[f'{_loader}.persistent_workers'] = False


def train_in_process(
    config: str,
    work_dir,
    epochs: int,
    resume: bool = False,
    backbone: Optional[dict] = None,
    lean: bool = True,
) -> None:
    """Train ``config`` with :data:`SHORT` for ``epochs``; ``backbone`` updates its backbone.
    ``lean=False`` keeps the config's own ``custom_hooks`` (full checkpoints)."""
    setup_runtime()
    cfg = Config.fromfile(config)
    options = {k: v for k, v in SHORT.items() if lean or k != 'custom_hooks'}
    cfg.merge_from_dict({**options, 'train_cfg.max_epochs': epochs})
    cfg.model.backbone.update(copy.deepcopy(backbone or {}))
    tag = uuid.uuid4().hex[:8]  # mmengine keys loggers / visualizers by name
    cfg.update(work_dir=str(work_dir), launcher='none', resume=resume, experiment_name=tag)
    cfg.visualizer.name = f'vis_{tag}'
    build_runner(cfg).train()


def check_lean_exact_resume(config: str, tmp_path, backbone: Optional[dict] = None) -> dict:
    """Train 2 epochs in one run, and 1 epoch then ``resume`` to 2 in another; assert both
    final checkpoints are lean and equal key by key and both end on the same val cIoU.

    Returns:
        The uninterrupted run's final ``state_dict`` (for the caller's key checks).
    """
    full, part = tmp_path / 'full', tmp_path / 'part'
    train_in_process(config, full, 2, backbone=backbone)
    train_in_process(config, part, 1, backbone=backbone)
    train_in_process(config, part, 2, resume=True, backbone=backbone)
    a, b = assert_same_final_checkpoint(full, part)
    assert a['meta']['lisakit']['lean'] and b['meta']['lisakit']['lean']
    return a['state_dict']


def assert_same_final_checkpoint(full, part, name: str = 'epoch_2.pth') -> tuple[dict, dict]:
    """Assert the work dirs ``full`` and ``part`` end on equal ``name`` state dicts and the
    same last val cIoU (``TrainingHistoryHook``); return both checkpoints."""
    a = torch.load(full / name, map_location='cpu', weights_only=False)
    b = torch.load(part / name, map_location='cpu', weights_only=False)
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for key, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][key]), key
    ha = json.loads((full / 'training_history.json').read_text())
    hb = json.loads((part / 'training_history.json').read_text())
    assert ha['val'][-1]['cIoU'] == hb['val'][-1]['cIoU']
    return a, b
