"""Distributed runs on CPU (gloo): torchrun DDP, FSDP, metrics across ranks, strategy configs.

The 2-process runs use tools/dist_train.sh and tools/dist_test.sh with the tiny config on a
few samples. A probe module (imported by every rank through ``custom_imports``) records
what each rank trained and validated and every file it opened for writing (Python audit
events), so "only rank 0 writes checkpoints and history" is checked per process.
"""

import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from tool_runner import DEMO, REPO, SMALL, output, run_tool

#: 7 val samples: odd, so the distributed sampler pads rank 1 with a repeat of sample 0
#: and the metric must drop it; val batches of 2 give several val iterations per rank.
VAL_SAMPLES = 7
OPTS = SMALL + [
    f'val_dataloader.dataset.num_samples={VAL_SAMPLES}',
    f'test_dataloader.dataset.num_samples={VAL_SAMPLES}',
    'val_dataloader.batch_size=2',
    'test_dataloader.batch_size=2',
    'train_dataloader.batch_size=4',
    'train_cfg.max_epochs=1',
    'param_scheduler.0.end=1',
]
#: Written by the trainers: only rank 0 may create any of these.
RANK0_ONLY = ('.pth', 'training_history.json', 'training_history.png', 'metrics_epoch_')

PROBE = """
import json, os, sys
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from lisakit.registry import HOOKS

WRITES = []
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


def _audit(event, args):
    if event == 'open':
        path, mode, flags = args
        if (mode is not None and any(c in mode for c in 'wax+')) or (
                mode is None and flags & WRITE_FLAGS):
            WRITES.append(str(path))
    elif event == 'os.rename':
        WRITES.append(str(args[1]))


sys.addaudithook(_audit)


@HOOKS.register_module()
class RankProbeHook(Hook):
    def __init__(self):
        self.train_iters, self.val_samples = 0, []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.train_iters += 1

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.val_samples += [int(s.metainfo['sample_idx']) for s in outputs]

    def after_run(self, runner):
        model = getattr(runner.model, 'module', runner.model)
        trained = sum(float(p.detach().double().sum()) for p in model.parameters()
                      if p.requires_grad)
        record = dict(world_size=get_world_size(), train_iters=self.train_iters,
                      val_samples=self.val_samples, trained_sum=trained,
                      writes=sorted(set(WRITES)))
        with open(os.path.join(runner.work_dir, f'probe_rank{get_rank()}.json'), 'w') as f:
            json.dump(record, f)
"""


def free_port() -> int:
    """A free local TCP port, so parallel test runs do not collide."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def torchrun(script: str, *args: str, cwd, env=None) -> subprocess.CompletedProcess:
    """``bash tools/<script> ...`` with this Python, one thread per process, in ``cwd``
    (mmengine gathers results through a ``.dist_test`` folder in the working dir)."""
    full_env = dict(
        os.environ, PORT=str(free_port()), OMP_NUM_THREADS='1', PYTHON=sys.executable, **(env or {})
    )
    cmd = ['bash', osp.join(REPO, 'tools', script), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=full_env)


def probed_config(folder, base: str = DEMO, extra: str = '') -> str:
    """A config inheriting ``base`` with the probe hook added; returns its path."""
    (folder / 'rank_probe.py').write_text(PROBE)
    config = folder / 'probed.py'
    config.write_text(
        f'_base_ = [{base!r}]\n'
        "custom_imports = dict(imports=['rank_probe'], allow_failed_imports=False)\n"
        "default_hooks = dict(probe=dict(type='RankProbeHook'))\n" + extra
    )
    return str(config)


def read_probes(work_dir) -> list:
    return [json.loads((work_dir / f'probe_rank{r}.json').read_text()) for r in (0, 1)]


@pytest.fixture(scope='module')
def ddp(tmp_path_factory):
    """2-process DDP training (1 epoch) through tools/dist_train.sh."""
    folder = tmp_path_factory.mktemp('ddp')
    config = probed_config(folder)
    work_dir = folder / 'work'
    env = {'PYTHONPATH': str(folder)}
    proc = torchrun(
        'dist_train.sh', config, '2', '--work-dir', str(work_dir), '--cfg-options', *OPTS,
        cwd=folder, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, output(proc)
    return config, work_dir, env


def test_both_ranks_train_and_validate_their_shares(ddp):
    _, work_dir, _ = ddp
    probes = read_probes(work_dir)
    assert [p['world_size'] for p in probes] == [2, 2]
    assert [p['train_iters'] for p in probes] == [2, 2]  # 16 samples / (2 ranks x batch 4)
    # sequential val sampler: rank r takes samples r, r+2, ...; rank 1 is padded with 0
    assert probes[0]['val_samples'] == [0, 2, 4, 6]
    assert probes[1]['val_samples'] == [1, 3, 5, 0]
    # DDP averaged the gradients: both ranks end with the same trained weights
    assert probes[0]['trained_sum'] == pytest.approx(probes[1]['trained_sum'], rel=1e-6)


def test_only_rank0_writes_checkpoints_and_history(ddp):
    _, work_dir, _ = ddp
    rank0, rank1 = (p['writes'] for p in read_probes(work_dir))
    for name in RANK0_ONLY:
        assert any(name in path for path in rank0), (name, rank0)
        assert not any(name in path for path in rank1), (name, rank1)
    history = json.loads((work_dir / 'training_history.json').read_text())
    assert [r['epoch'] for r in history['train']] == [1]
    assert [r['epoch'] for r in history['val']] == [1]


def test_val_metric_equals_single_process_and_dist_test(ddp, tmp_path):
    """Metrics gather per-sample results: 1 process and 2 processes agree exactly."""
    config, work_dir, env = ddp
    val = json.loads((work_dir / 'training_history.json').read_text())['val'][0]
    ckpt = str(work_dir / 'epoch_1.pth')
    single, dist = tmp_path / 'single.json', tmp_path / 'dist.json'
    proc = run_tool(
        'test.py', config, ckpt, '--work-dir', str(tmp_path / 'w1'), '--out', str(single),
        '--cfg-options', *OPTS, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, output(proc)
    proc = torchrun(
        'dist_test.sh', config, ckpt, '2', '--work-dir', str(tmp_path / 'w2'), '--out', str(dist),
        '--cfg-options', *OPTS, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, output(proc)
    one, two = json.loads(single.read_text()), json.loads(dist.read_text())
    for key in ('gIoU', 'cIoU', 'color/gIoU', 'color/cIoU'):
        assert one[key] == pytest.approx(val[key], abs=1e-6), key
        assert two[key] == pytest.approx(one[key], abs=1e-6), key
    assert 'ReasonSegMetric over 7 masks' in proc.stdout + proc.stderr  # padding dropped


def _metric_on_rank(rank: int, shards: list, port: int, out) -> None:
    """One gloo rank: feed its shard of samples to ReasonSegMetric, evaluate."""
    import torch.distributed as dist

    from lisakit.evaluation.metrics import ReasonSegMetric

    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=len(shards)
    )
    metric = ReasonSegMetric()
    metric.process({}, shards[rank])
    result = metric.evaluate(size=sum(len(s) for s in shards))
    out.put((rank, result))
    dist.destroy_process_group()


def _sample(pred_pixels: int, gt_pixels: int, size: int = 16) -> dict:
    """A sample whose prediction covers the first ``pred_pixels`` of ``gt_pixels``."""
    pred = torch.zeros(1, size, size, dtype=torch.bool)
    gt = torch.zeros(1, size, size, dtype=torch.long)
    pred.view(-1)[:pred_pixels] = True
    gt.view(-1)[:gt_pixels] = 1
    return dict(pred_masks=pred, gt_masks=gt)


def test_metric_reduces_sums_across_ranks_not_means_of_means():
    # rank 0 holds a large, half-found mask; every other mask is small and fully found
    shards = [[_sample(100, 200), _sample(2, 2)], [_sample(4, 4), _sample(1, 1)]]
    ctx = torch.multiprocessing.get_context('spawn')
    out = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_metric_on_rank, args=(r, shards, port, out)) for r in (0, 1)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    c_iou = (100 + 2 + 4 + 1) / (200 + 2 + 4 + 1)  # sums of intersections / unions
    g_iou = (0.5 + 1 + 1 + 1) / 4  # LISA's formulas carry tiny epsilons: rel=1e-4
    for rank in (0, 1):  # every rank receives rank 0's result
        assert results[rank]['cIoU'] == pytest.approx(c_iou, rel=1e-4)
        assert results[rank]['gIoU'] == pytest.approx(g_iou, rel=1e-4)
    assert c_iou != pytest.approx((102 / 202 + 1.0) / 2, rel=0.1)  # mean of per-rank cIoUs


def test_fsdp_strategy_trains_on_two_cpu_processes(ddp, tmp_path):
    """FlexibleRunner + FSDPStrategy (FULL_SHARD over 2 gloo ranks), fp32 on CPU."""
    fsdp = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny_fsdp_shapes.py')
    cpu = "optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict(type='AdamW'))\n"
    config = probed_config(tmp_path, base=fsdp, extra=cpu)
    work_dir = tmp_path / 'work'
    proc = torchrun(
        'dist_train.sh', config, '2', '--work-dir', str(work_dir), '--cfg-options', *OPTS,
        cwd=tmp_path, env={'PYTHONPATH': str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 0, output(proc)
    assert 'MMFullyShardedDataParallel' in proc.stdout + proc.stderr
    probes = read_probes(work_dir)
    assert [p['train_iters'] for p in probes] == [2, 2]
    assert not any('.pth' in path for path in probes[1]['writes'])
    # state_dict_cfg='full': one checkpoint with the plain model's keys, as DDP writes
    keys = torch.load(work_dir / 'epoch_1.pth', map_location='cpu', weights_only=False)
    reference = torch.load(ddp[1] / 'epoch_1.pth', map_location='cpu', weights_only=False)
    assert set(keys['state_dict']) == set(reference['state_dict'])


def test_strategy_configs_load_and_map_the_optimizer_wrapper():
    from lisakit.engine.runtime import deepspeed_config_keys

    zero2 = Config.fromfile(osp.join(REPO, 'configs', 'lisa', 'lisa_tiny-qlora_zero2_shapes.py'))
    assert zero2.runner_type == 'FlexibleRunner'
    assert zero2.strategy.zero_optimization.stage == 2
    assert zero2.model.backbone.quantization.bits == 4
    assert zero2.model.backbone.lora.r == 8
    assert deepspeed_config_keys(zero2.optim_wrapper) == dict(
        gradient_clipping=1.0, gradient_accumulation_steps=2, bf16=dict(enabled=True)
    )
    fsdp = Config.fromfile(osp.join(REPO, 'configs', 'lisa', 'lisa_tiny_fsdp_shapes.py'))
    assert fsdp.strategy.type == 'FSDPStrategy'
    assert (fsdp.optim_wrapper.type, fsdp.optim_wrapper.dtype) == ('AmpOptimWrapper', 'bfloat16')
    recipe = 'lisa_llava-1.5-7b-qlora_sam-vit-h_8xb2-accum10-zero2_reasonseg.py'
    zero2_7b = Config.fromfile(osp.join(REPO, 'configs', 'lisa', recipe))
    assert zero2_7b.strategy.type == 'DeepSpeedStrategy'
    assert deepspeed_config_keys(zero2_7b.optim_wrapper) == dict(
        gradient_clipping=1.0, gradient_accumulation_steps=10, bf16=dict(enabled=True)
    )
    with pytest.raises(ValueError, match='only clipping by the L2 norm'):
        deepspeed_config_keys(dict(clip_grad=dict(type='value', clip_value=1.0)))


def test_zero2_without_deepspeed_fails_clearly(monkeypatch):
    from lisakit.engine.runtime import prepare_strategy

    monkeypatch.setitem(sys.modules, 'deepspeed', None)  # import deepspeed -> ImportError
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'lisa', 'lisa_tiny-qlora_zero2_shapes.py'))
    with pytest.raises(ImportError, match='pip install deepspeed'):
        prepare_strategy(cfg)


#: ZeRO-2 runs: 32 samples / (2 ranks x batch 8) = 2 iterations per epoch, a whole
#: accumulation cycle (accumulative_counts=2), so epoch checkpoints fall on optimizer steps.
ZERO2_OPTS = SMALL + [
    'train_dataloader.dataset.num_samples=32',  # overrides SMALL's 16
    'model.backbone.lora.dropout=0.0',
    'param_scheduler.0.end=2',
]


def test_deepspeed_zero2_trains_and_resumes_exactly_on_two_cpu_processes(tmp_path):
    """The documented multi-GPU recipe (4-bit + LoRA + ZeRO-2, bf16) on 2 gloo ranks."""
    pytest.importorskip('deepspeed')
    config = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny-qlora_zero2_shapes.py')
    full, part = tmp_path / 'full', tmp_path / 'part'
    for work_dir, epochs, extra in ((full, 2, ()), (part, 1, ()), (part, 2, ('--resume',))):
        proc = torchrun(
            'dist_train.sh', config, '2', '--work-dir', str(work_dir), *extra,
            '--cfg-options', f'train_cfg.max_epochs={epochs}', *ZERO2_OPTS, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, output(proc)
    assert 'resumed epoch: 1, iter: 2' in proc.stdout + proc.stderr
    # a ZeRO checkpoint is a folder: the bf16 weights once, optimizer shards per rank
    ckpt = full / 'epoch_2.pth'
    assert {f.name for f in ckpt.iterdir()} == {
        'mp_rank_00_model_states.pt',
        'bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt',
        'bf16_zero_pp_rank_1_mp_rank_00_optim_states.pt',
    }
    a = torch.load(ckpt / 'mp_rank_00_model_states.pt', map_location='cpu', weights_only=False)
    b = torch.load(
        part / 'epoch_2.pth' / 'mp_rank_00_model_states.pt', map_location='cpu', weights_only=False
    )
    assert a['meta']['epoch'] == b['meta']['epoch'] == 2
    assert a['module'].keys() == b['module'].keys()
    assert any('lora_' in k for k in a['module'])
    assert not any(k.startswith('sam_encoder.') for k in a['module'])  # frozen: excluded
    for key, value in a['module'].items():
        assert torch.equal(value, b['module'][key]), key
    history = [json.loads((d / 'training_history.json').read_text()) for d in (full, part)]
    assert history[0]['val'][-1]['cIoU'] == history[1]['val'][-1]['cIoU']
