"""Crash-safe training in-process: exact resume inside an epoch (position, RNG, gradient
accumulation), a crash during validation, failed checkpoint writes and NaN losses.

The runs use the demo config on 8 samples (4 iterations of batch 2 per epoch, 2 epochs)
and are built in this process (no tool start-up), so the file runs in seconds.
"""

import errno
import json
import uuid

import pytest
import torch
from mmengine.hooks import Hook
from tool_runner import DEMO

from lisakit.engine.hooks.invalid_loss_hook import InvalidLossError
from lisakit.registry import HOOKS
from lisakit.utils import io as lisakit_io
from lisakit.utils.checkpoint import CheckpointError, checkpoint_problem

pytestmark = pytest.mark.slow  # in-process Runner runs, a few seconds each

#: 8 train samples, batch 2: 4 iterations per epoch; 3-step gradient accumulation, so
#: checkpoints after iterations 4, 5, 7, 8 fall inside an accumulation window.
OPTIONS = {
    'train_dataloader.dataset.num_samples': 8,
    'val_dataloader.dataset.num_samples': 4,
    'train_dataloader.batch_size': 2,
    'val_dataloader.batch_size': 4,
    'train_cfg.max_epochs': 2,
    'param_scheduler.0.end': 2,
    'optim_wrapper.accumulative_counts': 3,
    'default_hooks.logger.interval': 1,
    'default_hooks.checkpoint.iter_interval': 1,
    'default_hooks.visualization.draw': False,
}
for _loader in ('train_dataloader', 'val_dataloader'):
    OPTIONS[f'{_loader}.num_workers'] = 0
    OPTIONS[f'{_loader}.persistent_workers'] = False


class SimulatedCrashError(Exception):
    """Stands in for a kill: the run stops where the hook raises."""


@HOOKS.register_module(force=True)
class RandomDrawHook(Hook):
    """Draws from the global torch RNG every iteration (as dropout would) and records it."""

    priority = 'VERY_HIGH'

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        draws = runner.message_hub.get_info('test_draws', {})
        draws[runner.iter + 1] = float(torch.rand(1))
        runner.message_hub.update_info('test_draws', draws)


@HOOKS.register_module(force=True)
class CrashHook(Hook):
    """Raises after iteration ``at_iter`` (after its checkpoint) or in validation ``at_val``."""

    priority = 'LOWEST'

    def __init__(self, at_iter=None, at_val=None):
        self.at_iter, self.at_val = at_iter, at_val

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at_iter:
            raise SimulatedCrashError(f'after iteration {self.at_iter}')

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.epoch == self.at_val:
            raise SimulatedCrashError(f'in validation after epoch {self.at_val}')


@HOOKS.register_module(force=True)
class PoisonHook(Hook):
    """Sets one trainable weight to NaN for iteration ``at_iter`` only (a bad step)."""

    def __init__(self, at_iter):
        self.at_iter, self.saved = at_iter, None

    def _param(self, runner):
        return next(runner.model.neck.parameters())  # the <SEG> projector: feeds every mask

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.at_iter:
            param = self._param(runner)
            self.saved = param.detach().clone()
            param.data.view(-1)[0] = float('nan')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.saved is not None:
            self._param(runner).data.copy_(self.saved)
            self.saved = None


def run(work_dir, resume=False, hooks=(), **options):
    """Build the lisakit runner for the small demo in this process and train."""
    from mmengine.config import Config

    from lisakit.engine.runtime import build_runner, setup_runtime

    setup_runtime()
    cfg = Config.fromfile(DEMO)
    cfg.merge_from_dict({**OPTIONS, **options})
    for key, value in options.items():  # whole sections given as dicts replace the config's
        if '.' not in key and isinstance(value, dict):
            cfg[key] = value
    cfg.custom_hooks = list(cfg.custom_hooks) + [dict(type='RandomDrawHook'), *hooks]
    tag = uuid.uuid4().hex[:8]  # mmengine keys loggers / visualizers by name
    cfg.update(work_dir=str(work_dir), launcher='none', resume=resume, experiment_name=tag)
    cfg.visualizer.name = f'vis_{tag}'
    runner = build_runner(cfg)
    runner.train()
    return runner


def weights(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def val_rows(work_dir, split='val'):
    rows = json.loads((work_dir / 'training_history.json').read_text())[split]
    return [{k: v for k, v in r.items() if k not in ('time', 'data_time')} for r in rows]


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('reference')
    runner = run(work_dir)
    return work_dir, runner.message_hub.get_info('test_draws')


def test_resume_inside_an_epoch_and_after_a_crash_in_validation_is_exact(reference, tmp_path):
    ref_dir, ref_draws = reference
    # crash after iteration 5 (epoch 2, inside the accumulation window 4-6)
    with pytest.raises(SimulatedCrashError):
        run(tmp_path, hooks=[dict(type='CrashHook', at_iter=5)])
    assert (tmp_path / 'last_checkpoint').read_text().endswith('iter_5.pth')
    # resume, then crash during the validation of epoch 2 (its checkpoint waits for it)
    with pytest.raises(SimulatedCrashError):
        run(tmp_path, resume=True, hooks=[dict(type='CrashHook', at_val=2)])
    assert (tmp_path / 'last_checkpoint').read_text().endswith('iter_7.pth')  # epoch 2's waits
    runner = run(tmp_path, resume=True)
    assert runner.iter == 8
    final = weights(tmp_path / 'epoch_2.pth')
    expected = weights(ref_dir / 'epoch_2.pth')
    assert final.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(value, final[key]), key
    assert val_rows(tmp_path) == val_rows(ref_dir)
    # train means of epoch 2 count its iterations before the crash too
    assert val_rows(tmp_path, 'train') == val_rows(ref_dir, 'train')
    assert [r['epoch'] for r in val_rows(tmp_path)] == [1, 2]
    # the RNG draws of the resumed iterations are those of the uninterrupted run
    draws = runner.message_hub.get_info('test_draws')
    assert {k: draws[k] for k in (6, 7, 8)} == {k: ref_draws[k] for k in (6, 7, 8)}
    # old periodic checkpoints were pruned after the newer ones were written
    names = sorted(p.name for p in tmp_path.glob('*.pth'))
    assert names == sorted(p.name for p in ref_dir.glob('*.pth'))
    assert names[-1] == 'epoch_2.pth' and names[0].startswith('best_cIoU_epoch_')


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    real = lisakit_io._write_bytes

    def disk_full_at_epoch_2(tmp, obj, path):
        if path.endswith('epoch_2.pth'):
            with open(tmp, 'wb') as f:
                f.write(obj[:10])
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real(tmp, obj, path)

    monkeypatch.setattr(lisakit_io, '_write_bytes', disk_full_at_epoch_2)
    with pytest.raises(CheckpointError) as err:
        run(tmp_path, **{'default_hooks.checkpoint.iter_interval': -1})
    message = str(err.value)
    assert 'epoch_2.pth' in message and 'No space left on device' in message
    assert 'intact' in message and '--resume' in message
    assert (tmp_path / 'last_checkpoint').read_text().endswith('epoch_1.pth')
    assert checkpoint_problem(str(tmp_path / 'epoch_1.pth')) is None  # not pruned
    assert not (tmp_path / 'epoch_2.pth').exists()
    assert not list(tmp_path.glob('.tmp-*'))


def test_nan_loss_stops_with_iteration_losses_and_samples(tmp_path):
    with pytest.raises(InvalidLossError) as err:
        run(tmp_path, hooks=[dict(type='PoisonHook', at_iter=3)])
    message = str(err.value)
    assert 'iteration 3 (epoch 1)' in message and 'loss=nan' in message
    assert "'sample_idx'" in message and "action='skip'" in message
    # stopped before step 3 changed the weights: nothing saved from it, no best file
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_2.pth']


def test_nan_loss_skip_counts_and_never_reaches_the_weights(tmp_path):
    options = {'default_hooks.invalid_loss.action': 'skip', 'train_cfg.max_epochs': 1}
    runner = run(tmp_path, hooks=[dict(type='PoisonHook', at_iter=2)], **options)
    assert runner.message_hub.get_info('skipped_steps') == 1
    final = weights(tmp_path / 'epoch_1.pth')
    assert all(torch.isfinite(v).all() for v in final.values())
    assert (tmp_path / 'best_cIoU_epoch_1.pth').exists()


def _mixed_iter_options(tiny_cfg) -> dict:
    """Iteration-based training on a MixedDataset of two shapes sources with
    FreshDrawSampler (as the LISA mix): 4 iterations per data epoch, 7 in all."""
    source = tiny_cfg.train_dataloader.dataset.to_dict()
    sources = [dict(source, num_samples=8, seed=seed) for seed in (0, 1)]
    mixed = dict(_delete_=True, type='MixedDataset', datasets=sources, sample_rates=[3, 1])
    return {
        'train_dataloader.dataset': mixed,
        'train_dataloader.sampler': dict(type='FreshDrawSampler', shuffle=True),
        'train_cfg': dict(type='IterBasedTrainLoop', max_iters=7, val_interval=3),
        'param_scheduler': [],
        'train_dataloader.dataset.num_samples': 8,
        'optim_wrapper.accumulative_counts': 2,
        'log_processor.by_epoch': False,
        'default_hooks.checkpoint.by_epoch': False,
        'default_hooks.checkpoint.interval': 2,
        'default_hooks.checkpoint.iter_interval': -1,
    }


def test_iteration_based_mixed_draws_resume_without_replay(tiny_cfg, tmp_path):
    options = _mixed_iter_options(tiny_cfg)
    ref = run(tmp_path / 'ref', **options)
    # crash after iteration 5 (data epoch 2); iter_4.pth ends data epoch 1
    with pytest.raises(SimulatedCrashError):
        run(tmp_path / 'part', hooks=[dict(type='CrashHook', at_iter=5)], **options)
    resumed = run(tmp_path / 'part', resume=True, **options)
    assert resumed.iter == 7
    expected, final = (
        weights(tmp_path / 'ref' / 'iter_7.pth'),
        weights(tmp_path / 'part' / 'iter_7.pth'),
    )
    for key, value in expected.items():
        assert torch.equal(value, final[key]), key
    ref_draws, draws = (r.message_hub.get_info('test_draws') for r in (ref, resumed))
    assert {k: draws[k] for k in (5, 6, 7)} == {k: ref_draws[k] for k in (5, 6, 7)}
    texts = ''.join(p.read_text() for p in (tmp_path / 'part').glob('*/*.log'))
    assert 'data epoch 0, 8 samples into it' in texts and 'Advance dataloader' not in texts
