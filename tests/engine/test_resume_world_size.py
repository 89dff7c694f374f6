"""Resume inside an epoch on another number of processes (2-process CPU DDP <-> 1 process).

Semantics (lisakit DefaultSampler): the epoch's order is one global sequence; a resume
skips the samples all ranks consumed and splits the rest between the current ranks. So
every sample of the epoch is trained on exactly once whatever the world sizes.
"""

import json
import os.path as osp
import sys

import pytest
from tool_runner import DEMO, SMALL, output, run_tool

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools'))
from test_distributed import torchrun  # noqa: E402

#: 16 train samples, batch 4: 2 iterations per epoch on 2 ranks, 4 on 1 process.
OPTS = SMALL + [
    'train_dataloader.batch_size=4',
    'train_cfg.max_epochs=2',
    'param_scheduler.0.end=2',
    'default_hooks.checkpoint.iter_interval=1',
    'val_dataloader.dataset.num_samples=4',
]

PROBE = """
import json, os
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from lisakit.registry import HOOKS


@HOOKS.register_module()
class SampleProbeHook(Hook):
    priority = 'LOWEST'

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        ids = [int(s.metainfo['sample_idx']) for s in data_batch['data_samples']]
        path = os.path.join(runner.work_dir, f'samples_ws{get_world_size()}_rank{get_rank()}.jsonl')
        with open(path, 'a') as f:
            f.write(json.dumps(dict(epoch=runner.epoch + 1, iter=runner.iter + 1, ids=ids)) + '\\n')
        if runner.iter + 1 == int(os.environ.get('CRASH_AFTER_ITER', -1)):
            raise SystemExit(3)  # a crash right after this iteration's checkpoint
"""


def read(work_dir, world_size):
    rows = []
    for rank in range(world_size):
        path = work_dir / f'samples_ws{world_size}_rank{rank}.jsonl'
        rows += [json.loads(line) for line in path.read_text().splitlines()]
    return rows


@pytest.mark.slow
def test_resume_inside_an_epoch_from_2_processes_on_1_and_back(tmp_path):
    (tmp_path / 'sample_probe.py').write_text(PROBE)
    config = tmp_path / 'probed.py'
    config.write_text(
        f'_base_ = [{DEMO!r}]\n'
        "custom_imports = dict(imports=['sample_probe'], allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='TrainingHistoryHook'), dict(type='SampleProbeHook')]\n"
    )
    work_dir = tmp_path / 'work'
    env = {'PYTHONPATH': str(tmp_path), 'CRASH_AFTER_ITER': '1'}
    args = ['--work-dir', str(work_dir), '--cfg-options', *OPTS]
    # 2 processes: iteration 1 of epoch 1 (8 samples), then a crash
    proc = torchrun('dist_train.sh', str(config), '2', *args, cwd=tmp_path, env=env)
    assert proc.returncode != 0 and (work_dir / 'iter_1.pth').exists(), output(proc)
    # 1 process: the 8 samples left of epoch 1, iteration 1 of epoch 2, then a crash
    env['CRASH_AFTER_ITER'] = '4'
    proc = run_tool('train.py', str(config), '--resume', *args, env=env)
    assert proc.returncode != 0, output(proc)
    assert 'Resuming epoch 1 at iteration' in proc.stdout + proc.stderr
    # 2 processes: the 12 samples left of epoch 2
    env['CRASH_AFTER_ITER'] = '-1'
    proc = torchrun('dist_train.sh', str(config), '2', '--resume', *args, cwd=tmp_path, env=env)
    assert proc.returncode == 0, output(proc)
    rows = read(work_dir, 2) + read(work_dir, 1)
    for epoch in (1, 2):
        ids = sorted(i for r in rows if r['epoch'] == epoch for i in r['ids'])
        assert ids == list(range(16)), (epoch, ids)  # every sample once per epoch
    one = read(work_dir, 1)
    assert [r['iter'] for r in one] == [2, 3, 4]  # the iteration count goes on
    assert [len(r['ids']) for r in one] == [4, 4, 4]
    history = json.loads((work_dir / 'training_history.json').read_text())
    assert [r['epoch'] for r in history['val']] == [1, 2]
