"""Weighted mixing: rates over 10,000 draws, determinism, the DDP rank split, fresh draws
per epoch, and LISA's mix config (9:3:3:1) built on generated fixtures of every source."""

import copy
import json
import os.path as osp

import numpy as np
import pytest
from data_writers import (
    write_ade20k,
    write_image,
    write_jsonl,
    write_llava,
    write_mapillary,
    write_parts,
    write_reasonseg,
    write_refer,
)
from mmengine.config import Config
from mmengine.dataset import DefaultSampler
from mmengine.registry import init_default_scope
from processing import process_packed, word_processor
from tool_runner import DEMO, output, run_tool

from lisakit.datasets import FreshDrawSampler, MixedDataset, ShapesReasonSegDataset
from lisakit.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LISA_MIX = osp.join(REPO, 'configs', '_base_', 'datasets', 'lisa_mix.py')
RATES = [9, 3, 3, 1]
DRAWS = 10_000
#: Allowed gap between observed and configured frequencies (2 percentage points).
TOLERANCE = 0.02


def shapes(n, seed):
    return ShapesReasonSegDataset(num_samples=n, seed=seed)


@pytest.fixture(scope='module')
def sources():
    return [shapes(n, seed) for n, seed in ((5, 0), (7, 1), (3, 2), (2, 3))]


def frequencies(mix, draws=DRAWS, start=0):
    picks = [mix.source_of(i)[0] for i in range(start, start + draws)]
    return np.bincount(picks, minlength=len(mix.datasets)) / draws


def test_frequencies_match_rates_over_10000_draws(sources):
    mix = MixedDataset(sources, sample_rates=RATES, num_samples=DRAWS, seed=0)
    observed = frequencies(mix)
    expected = np.array(RATES) / sum(RATES)
    assert np.abs(observed - expected).max() < TOLERANCE, observed
    # inside a source the index is uniform: every sample of the smallest one is drawn
    local = {mix.source_of(i)[1] for i in range(DRAWS) if mix.source_of(i)[0] == 3}
    assert local == {0, 1}
    assert len(mix) == DRAWS
    # equal rates by default, and len = the sources' total by default
    uniform = MixedDataset(sources)
    assert len(uniform) == 17
    assert np.abs(frequencies(uniform, 4000) - 0.25).max() < TOLERANCE


def test_same_seed_same_sequence(sources):
    a = MixedDataset(sources, sample_rates=RATES, num_samples=100, seed=3)
    b = MixedDataset(sources, sample_rates=RATES, num_samples=100, seed=3)
    c = MixedDataset(sources, sample_rates=RATES, num_samples=100, seed=4)
    seq = [a.source_of(i) for i in range(100)]
    assert seq == [b.source_of(i) for i in range(100)]
    assert seq != [c.source_of(i) for i in range(100)]
    # an item is the drawn source's item, with its own pipeline output
    k, local = seq[7]
    assert a[7]['question'] == sources[k][local]['question']
    assert a.get_data_info(7)['sample_idx'] == local


def rank_indices(monkeypatch, sampler_cls, dataset, world, epoch=0):
    out = []
    for rank in range(world):
        monkeypatch.setattr('mmengine.dataset.sampler.get_dist_info', lambda r=rank: (r, world))
        sampler = sampler_cls(dataset, shuffle=True, seed=0)
        sampler.set_epoch(epoch)
        out.append(list(sampler))
    return out


@pytest.mark.parametrize('sampler_cls', [DefaultSampler, FreshDrawSampler])
def test_two_ranks_split_an_epoch(monkeypatch, sources, sampler_cls):
    mix = MixedDataset(sources, sample_rates=RATES, num_samples=1000, seed=0)
    for epoch in (0, 1):
        rank0, rank1 = rank_indices(monkeypatch, sampler_cls, mix, world=2, epoch=epoch)
        assert len(rank0) == len(rank1) == 500
        assert not set(rank0) & set(rank1)  # each rank sees other draws
        offset = 1000 * epoch if sampler_cls is FreshDrawSampler else 0
        assert set(rank0) | set(rank1) == set(range(offset, offset + 1000))  # one epoch


def test_fresh_draws_each_epoch(monkeypatch, sources):
    mix = MixedDataset(sources, sample_rates=RATES, num_samples=2000, seed=0)
    (epoch0,) = rank_indices(monkeypatch, FreshDrawSampler, mix, world=1, epoch=0)
    (epoch1,) = rank_indices(monkeypatch, FreshDrawSampler, mix, world=1, epoch=1)
    draws0 = sorted(mix.source_of(i) for i in epoch0)
    draws1 = sorted(mix.source_of(i) for i in epoch1)
    assert draws0 != draws1  # other samples, same rates
    assert np.abs(frequencies(mix, 2000, start=2000) - np.array(RATES) / 16).max() < 0.03
    (again,) = rank_indices(monkeypatch, FreshDrawSampler, mix, world=1, epoch=1)
    assert again == epoch1  # resuming at epoch 1 replays its draws
    with pytest.raises(TypeError, match='FreshDrawSampler needs'):
        FreshDrawSampler(sources[0], seed=0)


def test_bad_mixing_arguments(sources):
    with pytest.raises(ValueError, match='4 positive numbers'):
        MixedDataset(sources, sample_rates=[1, 2, 3])
    with pytest.raises(ValueError, match='4 positive numbers'):
        MixedDataset(sources, sample_rates=[1, 2, 3, -1])
    with pytest.raises(ValueError, match='datasets is empty'):
        MixedDataset([])
    with pytest.raises(ValueError, match='hold no sample'):
        MixedDataset(
            [sources[0], ShapesReasonSegDataset(num_samples=2, indices=[], serialize_data=False)]
        )
    with pytest.raises(IndexError):
        MixedDataset(sources).source_of(-1)


# ----------------------------------------------------------------- LISA's mix config
TINY = dict(SAMPreprocess=dict(img_size=64))


def localize(cfg, root):
    """``data/...`` roots -> the fixture folder; pipelines -> the tiny model's sizes."""
    if isinstance(cfg, list):
        return [localize(c, root) for c in cfg]
    if not isinstance(cfg, dict):
        return cfg
    cfg = {k: localize(v, root) for k, v in cfg.items()}
    if isinstance(cfg.get('data_root'), str) and cfg['data_root'].startswith('data'):
        cfg['data_root'] = str(root) + cfg['data_root'][len('data') :]
    cfg.update(TINY.get(cfg.get('type'), {}))
    return cfg


@pytest.fixture(scope='module')
def lisa_data(tmp_path_factory):
    """Every source of LISA's mix in its real format under one LISA-style data root."""
    root = tmp_path_factory.mktemp('dataset')
    write_ade20k(root / 'ade20k')
    coco = root / 'coco' / 'train2017'
    write_ade20k(root / 'stuff')  # COCO-Stuff: COCO images + stuffthingmaps PNGs
    (root / 'coco').mkdir()
    (root / 'stuff' / 'images' / 'training').rename(coco)
    (root / 'cocostuff').mkdir()
    (root / 'stuff' / 'annotations' / 'training').rename(root / 'cocostuff' / 'train2017')
    for dataset, split_by in (('refcoco', 'unc'), ('refcoco+', 'unc'), ('refcocog', 'umd')):
        write_refer(root / 'refer_seg', dataset, split_by)
    write_refer(root / 'refer_seg', 'refclef', 'unc', img_dir='images/saiapr_tc-12')
    write_llava(root, n=3)  # also writes coco/train2017/0000...jpg
    paco = ['train2017/000000000000.jpg', 'train2017/000000000001.jpg']
    write_parts(root, 'vlpart/paco/annotations/paco_lvis_v1_train.json', 'coco', paco)
    voc = 'vlpart/pascal_part/VOCdevkit/VOC2010/JPEGImages'
    write_parts(root, 'vlpart/pascal_part/train.json', voc, ['2008_000001.jpg'])
    write_mapillary(root / 'mapillary')
    reason = root / 'reason_seg' / 'ReasonSeg'
    write_reasonseg(reason, 'train', ['r1', 'r2'])
    write_reasonseg(reason, 'val', ['v1'])
    (reason / 'explanatory').mkdir()
    (reason / 'explanatory' / 'train.json').write_text(
        '[{"image": "r1.jpg", "query": "the thing", "outputs": "It holds water."}]'
    )
    return root


def test_lisa_mix_config_builds_and_draws_at_9_3_3_1(lisa_data):
    init_default_scope('lisakit')
    cfg = Config.fromfile(LISA_MIX)
    loader = cfg.train_dataloader
    assert loader.sampler.type == 'FreshDrawSampler'
    assert loader.dataset.sample_rates == RATES
    mix = DATASETS.build(localize(copy.deepcopy(loader.dataset.to_dict()), lisa_data))
    names = [type(d).__name__ for d in mix.datasets]
    assert names == ['MixedDataset', 'MixedDataset', 'VQADataset', 'ReasonSegDataset']
    assert [type(d).__name__ for d in mix.datasets[0].datasets] == [
        'SemanticSegDataset',
        'SemanticSegDataset',
        'PartSegDataset',
        'PartSegDataset',
        'SemanticSegDataset',
    ]
    assert [d.dataset for d in mix.datasets[1].datasets] == [
        'refclef',
        'refcoco',
        'refcoco+',
        'refcocog',
    ]
    assert len(mix) == 80_000
    observed = frequencies(mix)
    expected = np.array([0.5625, 0.1875, 0.1875, 0.0625])
    assert np.abs(observed - expected).max() < TOLERANCE, observed
    # inside the groups the pick is uniform, as LISA's
    assert np.abs(frequencies(mix.datasets[0], 4000) - 0.2).max() < TOLERANCE
    assert np.abs(frequencies(mix.datasets[1], 4000) - 0.25).max() < TOLERANCE
    for source in mix.datasets[0].datasets:  # every semantic / part source yields its masks
        info = source.get_data_info(0)
        assert len(info['gt_masks']) == len(info['class_names']) >= 1
    # every source yields neutral samples that a processor (LISA's per-query layout, the
    # tiny model's 16 image features) turns into one mask per <SEG> (none for VQA)
    proc = word_processor(max_length=128, num_image_features=16)
    first_draw = {}
    for i in range(200):
        first_draw.setdefault(mix.source_of(i)[0], i)
    assert sorted(first_draw) == [0, 1, 2, 3]
    for k, i in first_draw.items():
        out = process_packed(proc, mix[i])
        n_seg = sum(int((ids == proc.seg_token_id).sum()) for ids in out['input_ids'])
        assert len(out['data_sample'].gt_masks) == n_seg
        assert (n_seg == 0) == (k == 2), (k, n_seg)  # only VQA is text-only
    val = DATASETS.build(localize(cfg.val_dataloader.dataset.to_dict(), lisa_data))
    assert len(val) == 1 and val.get_data_info(0)['answer'] == '<SEG>.'


# ----------------------------------------------------------------- check_dataset on a mix
SQUARE = [1, 1, 6, 1, 6, 6, 1, 6]


def jsonl_source(root, lines):
    """A JSONLDataset config reading ``lines`` (images: a.jpg, 20x24)."""
    write_image(root / 'images' / 'a.jpg', 20, 24)
    write_jsonl(root / 'train.jsonl', lines)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadMaskAnnotations')]
    return dict(
        type='JSONLDataset',
        ann_file='train.jsonl',
        data_root=str(root),
        data_prefix=dict(img_path='images'),
        pipeline=pipeline,
    )


def query_line(mask):
    return dict(image='a.jpg', conversations=[dict(query='the square', masks=[mask])])


def test_check_dataset_walks_a_nested_mix(tmp_path):
    truncated = dict(size=[20, 24], counts=[100, 5, 200])  # 305 of 480 pixels
    user = jsonl_source(
        tmp_path / 'user',
        [
            query_line(dict(polygons=[SQUARE])),
            query_line(dict(rle=truncated)),  # bad while loading
            query_line(dict(polygons=[[30, 2, 40, 2, 40, 8, 30, 8]])),  # bad in the pipeline
        ],
    )
    refer = write_refer(tmp_path / 'refer_seg')
    instances = refer / 'refcoco' / 'instances.json'
    coco = json.loads(instances.read_text())
    coco['annotations'][1]['segmentation'] = dict(size=[12, 16], counts=[50, 3])  # ann 12
    instances.write_text(json.dumps(coco))
    refcoco = dict(type='RefCOCODataset', data_root=str(refer), pipeline=[])
    good = jsonl_source(tmp_path / 'good', [query_line(dict(polygons=[SQUARE]))])
    inner = dict(type='MixedDataset', datasets=[refcoco, good])
    mix = dict(_delete_=True, type='MixedDataset', datasets=[user, inner], sample_rates=[3, 1])
    config = tmp_path / 'mix.py'
    config.write_text(f"_base_ = ['{DEMO}']\ntrain_dataloader = dict(dataset={mix!r})\n")
    proc = run_tool('misc/check_dataset.py', str(config))
    assert proc.returncode == 1, output(proc)
    # sources: 2 JSONL samples (1 line skipped), 2 refCOCO (ref of ann 12 skipped), 1 good
    assert '5 samples checked, 3 bad (3 source datasets)' in proc.stdout, output(proc)
    table = proc.stdout.split('source\tfile\treason\n', 1)[1].strip().splitlines()
    rows = [line.split('\t') for line in table]
    assert len(rows) == 3 and all(len(r) == 3 for r in rows), table
    (src1, file1, why1), (src2, file2, why2), (src3, file3, why3) = rows
    assert src1 == src2 == 'JSONLDataset (datasets[0])'
    assert file1.endswith('train.jsonl:2') and 'mask 1: RLE runs add up to 305 pixels' in why1
    assert file2.endswith('train.jsonl:3') and 'polygon 1 spans x 30..40' in why2
    assert src3 == 'RefCOCODataset (datasets[1][0])' and file3.endswith('instances.json')
    assert 'annotation 12 (ref 1): RLE runs add up to 53 pixels' in why3


# ----------------------------------------------------------------- fresh choices per draw
def test_a_sample_drawn_again_gets_new_choices(lisa_data):
    """LISA re-draws classes, sentences, templates and the explanatory answer type at every
    visit; inside a mix, draw i seeds them (they used to be fixed per sample forever)."""
    reason = str(lisa_data / 'reason_seg' / 'ReasonSeg')
    sources = dict(
        sem=(
            DATASETS.build(dict(type='SemanticSegDataset', data_root=str(lisa_data / 'ade20k'))),
            'class_names',
        ),
        refer=(
            DATASETS.build(
                dict(
                    type='RefCOCODataset',
                    data_root=str(lisa_data / 'refer_seg'),
                    num_classes_per_sample=2,
                )
            ),
            'texts',
        ),
        reason=(
            DATASETS.build(
                dict(type='ReasonSegDataset', data_root=reason, split='train', explanatory=0.5)
            ),
            'answer_type',
        ),
    )
    for name, (source, key) in sources.items():
        mix = MixedDataset([source], num_samples=10, seed=0)
        seen = {}
        for i in range(40):
            info = mix.get_data_info(i)
            seen.setdefault(info['img_path'], set()).add((str(info[key]), info['question']))
            again = mix.get_data_info(i)  # the same draw gives the same sample
            assert (again[key], again['question']) == (info[key], info['question']), name
        assert all(len(choices) > 1 for choices in seen.values()), (name, seen)
        # outside a mix a sample is a fixed function of (seed, index), as before
        assert source.get_data_info(0)['question'] == source.get_data_info(0)['question']
    # the masks follow the drawn texts
    refer, _ = sources['refer']
    mix = MixedDataset([refer], num_samples=10, seed=0)
    boxes = {'left box': 11, 'small one': 11, 'right box': 12}
    for i in range(10):
        info = mix.get_data_info(i)
        assert len(info['texts']) == 2 == len(info['gt_masks'])
        for text, mask in zip(info['texts'], info['gt_masks']):
            assert mask[3, 3 if boxes[text] == 11 else 10] == 1, (text, mask)
