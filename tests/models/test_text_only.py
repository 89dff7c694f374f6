"""Text-only samples (VQA: no <SEG>, no masks) in training: LM loss only, SAM skipped,
alone and mixed with segmentation samples, in one process and under CPU DDP."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from data_writers import write_llava
from mmengine.dataset import pseudo_collate

from lisakit.registry import DATASETS, MODELS

TINY_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadMaskAnnotations'),
    dict(type='SAMPreprocess', img_size=64),
    dict(type='PackLISAInputs'),
]


def vqa_cfg(root):
    return dict(type='VQADataset', data_root=str(root), pipeline=TINY_PIPELINE)


def collate(vqa_root, shapes_cfg, n_vqa, n_shapes):
    """A collated batch of ``n_shapes`` shapes samples then ``n_vqa`` VQA samples."""
    vqa = DATASETS.build(vqa_cfg(vqa_root))
    shapes = DATASETS.build(shapes_cfg)
    return pseudo_collate([shapes[i] for i in range(n_shapes)] + [vqa[i] for i in range(n_vqa)])


def make_batch(model, vqa_root, shapes_cfg, n_vqa, n_shapes):
    """The collated batch, preprocessed by the model."""
    return model.data_preprocessor(collate(vqa_root, shapes_cfg, n_vqa, n_shapes), True)


@pytest.fixture(scope='module')
def vqa_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('llava')
    write_llava(root, n=3)
    return root


@pytest.fixture(scope='module')
def model(tiny_cfg):
    torch.manual_seed(0)
    return MODELS.build(tiny_cfg.model).train()


@pytest.fixture()
def sam_batch_sizes(model):
    """The batch size of every SAM encoder call during the test."""
    sizes = []
    handle = model.sam_encoder.register_forward_hook(
        lambda m, args, out: sizes.append(len(args[0]))
    )
    yield sizes
    handle.remove()


def grads(model, prefix):
    return [p.grad for n, p in model.named_parameters() if n.startswith(prefix) and p.requires_grad]


def test_vqa_only_batch_trains_the_lm_and_skips_sam(
    model, vqa_root, small_dataset_cfg, sam_batch_sizes
):
    data = make_batch(model, vqa_root, small_dataset_cfg('train', 2), n_vqa=3, n_shapes=0)
    assert all(len(s.gt_masks) == 0 for s in data['data_samples'])
    model.zero_grad()
    losses = model(**data, mode='loss')
    assert sam_batch_sizes == []  # SAM never ran
    assert torch.isfinite(losses['loss_ce']) and losses['loss_ce'] > 0
    assert float(losses['loss_bce']) == 0.0 and float(losses['loss_dice']) == 0.0
    assert 'gIoU' not in losses and 'cIoU' not in losses
    total = sum(v for k, v in losses.items() if k.startswith('loss_'))
    total.backward()
    lm_grads = [g for g in grads(model, 'backbone.') if g is not None]
    assert lm_grads and all(torch.isfinite(g).all() for g in lm_grads)
    assert any(g.abs().sum() > 0 for g in lm_grads)
    # no mask, so the neck and the mask decoder get no gradient (DDP: find_unused_parameters)
    assert all(g is None for g in grads(model, 'neck.') + grads(model, 'head.'))


def test_mixed_batch_decodes_masks_only_for_seg_samples(
    model, vqa_root, small_dataset_cfg, sam_batch_sizes
):
    data = make_batch(model, vqa_root, small_dataset_cfg('train', 2), n_vqa=2, n_shapes=2)
    model.zero_grad()
    losses = model(**data, mode='loss')
    assert sam_batch_sizes == [2]  # only the two shapes images went through SAM
    for key in ('loss_ce', 'loss_bce', 'loss_dice', 'gIoU', 'cIoU'):
        assert torch.isfinite(losses[key]), key
    assert losses['loss_bce'] > 0 and losses['loss_dice'] > 0
    sum(v for k, v in losses.items() if k.startswith('loss_')).backward()
    for part in ('neck.', 'head.mask_decoder.transformer', 'backbone.'):
        got = [g for g in grads(model, part) if g is not None]
        assert got and any(g.abs().sum() > 0 for g in got), part
    with torch.no_grad():
        masks = model(**data, mode='tensor')
        samples = model(**data, mode='predict')
    assert [len(m) for m in masks] == [1, 1, 0, 0]
    assert masks[2].shape == (0, 40, 48)  # empty, at the VQA image's size
    assert [tuple(s.pred_masks.shape) for s in samples[2:]] == [(0, 40, 48)] * 2
    assert samples[2].losses['loss_bce'] == 0.0 and samples[0].losses['loss_bce'] > 0


def test_missing_gt_masks_is_a_clear_error(model, vqa_root, small_dataset_cfg):
    data = make_batch(model, vqa_root, small_dataset_cfg('train', 2), n_vqa=1, n_shapes=1)
    del data['data_samples'][1].gt_masks
    with pytest.raises(ValueError, match='has no gt_masks.*LoadMaskAnnotations'):
        model(**data, mode='loss')


# --------------------------------------------------------------------------- CPU DDP
def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ddp_worker(rank, port, vqa_root, shapes_cfg, model_cfg, out_dir):
    """Rank 0 trains a VQA-only batch, rank 1 a mixed batch, through mmengine's DDP."""
    import torch.distributed as dist
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope

    init_default_scope('lisakit')
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).train()
    n_vqa, n_shapes = (2, 0) if rank == 0 else (1, 1)
    data = collate(vqa_root, shapes_cfg, n_vqa, n_shapes)
    ddp = MMDistributedDataParallel(module=model, device_ids=None, find_unused_parameters=True)
    neck_before = [p.detach().clone() for p in model.neck.parameters()]
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    log_vars = {}
    for _ in range(2):  # two steps: the reducer must stay in sync after a skipped SAM
        log_vars = ddp.train_step(data, optim)
    trainable = [p for p in model.parameters() if p.requires_grad]
    checksum = float(sum(p.detach().double().sum() for p in trainable))
    neck_moved = any(not torch.equal(a, b) for a, b in zip(neck_before, model.neck.parameters()))
    result = dict(
        losses={k: float(v) for k, v in log_vars.items()}, checksum=checksum, neck_moved=neck_moved
    )
    with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as f:
        json.dump(result, f)
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_text_only_rank_and_mixed_rank_stay_in_sync(
    vqa_root, small_dataset_cfg, tiny_model_cfg, tmp_path
):
    args = (
        _free_port(),
        str(vqa_root),
        small_dataset_cfg('train', 2),
        tiny_model_cfg,
        str(tmp_path),
    )
    # fork: the ranks inherit the imported torch / transformers / lisakit (spawn re-imports
    # them in each rank, most of this test's time); each rank sets 1 thread first
    mp.start_processes(_ddp_worker, args=args, nprocs=2, join=True, start_method='fork')
    ranks = [json.loads((tmp_path / f'rank{r}.json').read_text()) for r in range(2)]
    for r in ranks:
        assert all(v == v and abs(v) < float('inf') for v in r['losses'].values()), r
    assert ranks[0]['losses']['loss_bce'] == 0.0 and 'gIoU' not in ranks[0]['losses']
    assert ranks[1]['losses']['loss_bce'] > 0
    # gradients were all-reduced: identical weights on both ranks, and the neck moved on
    # rank 0 too although its own batch had no mask
    assert ranks[0]['checksum'] == pytest.approx(ranks[1]['checksum'], rel=1e-9, abs=1e-9)
    assert ranks[0]['neck_moved'] and ranks[1]['neck_moved']
