"""Export a trained tiny QLoRA checkpoint and load it back with identical predictions."""

import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from lisakit.apis import init_model
from lisakit.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
QLORA = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny-qlora_shapes.py')
SMALL = [
    'train_dataloader.dataset.num_samples=16',
    'val_dataloader.dataset.num_samples=8',
    'train_cfg.max_epochs=1',
    'param_scheduler.0.end=1',
]
SMALL += [
    f'{loader}.{key}'
    for loader in ('train_dataloader', 'val_dataloader')
    for key in ('num_workers=0', 'persistent_workers=False')
]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('export')
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'),
        QLORA,
        '--work-dir',
        str(work_dir),
        '--cfg-options',
        *SMALL,
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cfg = Config.fromfile(QLORA)
    cfg.merge_from_dict(dict(x.split('=') for x in SMALL[:2]))
    return work_dir, cfg


def _logits(model, cfg):
    dataset = DATASETS.build(dict(cfg.val_dataloader.dataset, num_samples=4))
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(4)]), False)
    with torch.no_grad():
        return model(**data, mode='tensor')


def test_export_round_trip_gives_identical_predictions(trained, tmp_path):
    work_dir, cfg = trained
    ckpt = str(work_dir / 'epoch_1.pth')
    out = tmp_path / 'export'
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'model_converters', 'export.py'),
        QLORA,
        ckpt,
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / 'adapter' / 'adapter_config.json').is_file()
    assert (out / 'adapter' / 'adapter_model.safetensors').is_file()
    assert (out / 'lisakit_weights.safetensors').is_file()
    info = json.loads((out / 'export_info.json').read_text())
    assert info['adapter_tensors'] > 0 and info['lisakit_tensors'] > 0
    from_ckpt = _logits(init_model(cfg, ckpt), cfg)
    from_export = _logits(init_model(str(out)), cfg)
    fresh = _logits(init_model(cfg), cfg)
    for a, b, c in zip(from_ckpt, from_export, fresh):
        assert torch.equal(a, b)
        assert not torch.equal(a, c)  # the trained weights matter


def test_unsafe_load_flag_sets_the_opt_in(monkeypatch):
    import argparse

    from lisakit.utils.checkpoint import UNSAFE_LOAD_ENV
    from lisakit.utils.runtime import add_common_args, load_config

    monkeypatch.delenv(UNSAFE_LOAD_ENV, raising=False)
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    add_common_args(parser)
    load_config(parser.parse_args([QLORA, '--unsafe-load']))
    import os

    assert os.environ[UNSAFE_LOAD_ENV] == '1'
