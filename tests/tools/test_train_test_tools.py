"""End-to-end: tools/train.py and tools/test.py on the tiny config (short runs)."""

import json

import pytest
from tool_runner import DEMO as CONFIG
from tool_runner import QLORA, SMALL, output, run_tool, train


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('train')
    proc = train(work_dir, 2)
    assert proc.returncode == 0, output(proc)
    return work_dir


def test_train_writes_history_plot_and_best_checkpoint(trained):
    history = json.loads((trained / 'training_history.json').read_text())
    assert [r['epoch'] for r in history['train']] == [1, 2]
    assert [r['epoch'] for r in history['val']] == [1, 2]
    for key in ('loss', 'ce', 'bce', 'dice', 'cIoU', 'gIoU'):
        assert history['train'][-1][key] is not None, key
        assert history['val'][-1][key] is not None, key
    assert history['benchmarks']['peak_memory_gb'] > 0
    assert history['benchmarks']['avg_inference_time_s'] > 0
    assert (trained / 'training_history.png').stat().st_size > 10_000
    per_epoch = json.loads((trained / 'metrics_epoch_2.json').read_text())
    assert per_epoch['val']['cIoU'] == history['val'][-1]['cIoU']
    assert len(list(trained.glob('best_cIoU_epoch_*.pth'))) == 1


def test_test_tool_reproduces_val_metrics_and_draws(trained, tmp_path):
    history = json.loads((trained / 'training_history.json').read_text())
    best = next(trained.glob('best_cIoU_epoch_*.pth'))
    epoch = int(best.stem.rsplit('_', 1)[1])
    expected = next(r for r in history['val'] if r['epoch'] == epoch)
    out = tmp_path / 'metrics.json'
    show = tmp_path / 'vis'
    proc = run_tool(
        'test.py',
        CONFIG,
        str(best),
        '--work-dir',
        str(tmp_path / 'wd'),
        '--out',
        str(out),
        '--show-dir',
        str(show),
        '--cfg-options',
        *SMALL,
    )
    assert proc.returncode == 0, output(proc)
    metrics = json.loads(out.read_text())
    assert metrics['cIoU'] == pytest.approx(expected['cIoU'], abs=1e-6)
    assert metrics['gIoU'] == pytest.approx(expected['gIoU'], abs=1e-6)
    assert len(list(show.glob('*.png'))) == 8


def test_resume_continues_from_last_epoch(trained, tmp_path):
    work_dir = tmp_path / 'resume'
    proc = train(work_dir, 1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = train(work_dir, 2, '--resume')
    assert proc.returncode == 0, output(proc)
    assert 'resumed epoch: 1' in proc.stdout + proc.stderr
    history = json.loads((work_dir / 'training_history.json').read_text())
    assert [r['epoch'] for r in history['train']] == [1, 2]


CUSTOM_NECK = """
from mmengine.model import BaseModule
from torch import nn

from lisakit.registry import MODELS


@MODELS.register_module()
class MyTwoLayerNeck(BaseModule):
    def __init__(self, in_channels, out_channels=256, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.my_fc = nn.Sequential(nn.Linear(in_channels, 32), nn.GELU(),
                                   nn.Linear(32, out_channels))

    def forward(self, x):
        return self.my_fc(x)
"""


def test_custom_neck_from_user_module_trains(tmp_path):
    (tmp_path / 'my_project').mkdir()
    (tmp_path / 'my_project' / '__init__.py').write_text('')
    (tmp_path / 'my_project' / 'my_neck.py').write_text(CUSTOM_NECK)
    config = tmp_path / 'my_config.py'
    config.write_text(
        f"_base_ = ['{CONFIG}']\n"
        "custom_imports = dict(imports=['my_project.my_neck'], allow_failed_imports=False)\n"
        "model = dict(neck=dict(_delete_=True, type='MyTwoLayerNeck', out_channels=64))\n"
    )
    work_dir = tmp_path / 'wd'
    env = {'PYTHONPATH': str(tmp_path)}
    proc = train(work_dir, 1, config=str(config), env=env)
    assert proc.returncode == 0, output(proc)
    import torch

    ckpt = torch.load(next(work_dir.glob('epoch_1.pth')), map_location='cpu', weights_only=False)
    assert any(k.startswith('neck.my_fc.') for k in ckpt['state_dict'])


def test_unknown_type_fails_with_nonzero_exit(tmp_path):
    proc = train(tmp_path, 1, '--cfg-options', 'model.neck.type=NoSuchNeck')
    assert proc.returncode != 0
    assert 'NoSuchNeck' in proc.stderr


def test_missing_checkpoint_fails(tmp_path):
    proc = run_tool('test.py', CONFIG, str(tmp_path / 'none.pth'))
    assert proc.returncode != 0
    assert 'none.pth' in proc.stderr


def test_best_only_checkpoint_holds_optimizer_and_scheduler(tmp_path):
    import torch

    proc = train(
        tmp_path,
        1,
        '--cfg-options',
        'default_hooks.checkpoint.interval=-1',
        'default_hooks.checkpoint.save_last=False',
    )
    assert proc.returncode == 0, output(proc)
    assert [p.name for p in tmp_path.glob('*.pth')] == ['best_cIoU_epoch_1.pth']
    ckpt = torch.load(tmp_path / 'best_cIoU_epoch_1.pth', map_location='cpu', weights_only=False)
    assert {'state_dict', 'optimizer', 'param_schedulers', 'message_hub'} <= set(ckpt)


def test_qlora_tiny_config_trains_with_falling_loss(tmp_path):
    proc = train(
        tmp_path, 3, '--cfg-options', 'train_dataloader.dataset.num_samples=48', config=QLORA
    )
    assert proc.returncode == 0, output(proc)
    history = json.loads((tmp_path / 'training_history.json').read_text())
    losses = [r['loss'] for r in history['train']]
    assert losses[2] < losses[1] < losses[0], losses
    assert 'backbone: 16,640 /' in proc.stdout + proc.stderr  # LoRA + two <SEG> rows
