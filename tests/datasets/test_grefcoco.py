"""GRefCOCODataset on hand-built gRefCOCO fixtures (grefs(unc).json + COCO
instances.json): expressions with 0, 1 and 3 targets, an annotation with several
polygons, a crowd RLE; merged and per-object masks pixel by pixel, the per-object
order, answers, no-target handling and bad input."""

import importlib.util
import json
import os.path as osp
import pickle
import sys

import numpy as np
import pytest
from data_writers import uncompressed_rle
from mmengine.config import Config
from PIL import Image
from pycocotools import mask as mask_utils
from tool_runner import REPO

from lisakit.datasets import GRefCOCODataset
from lisakit.datasets.transforms.formatting import PackLISAInputs
from lisakit.registry import DATASETS
from lisakit.utils.constants import SEG_TOKEN

H, W = 12, 16
IMG = 'COCO_train2014_000000000001.jpg'


def box(x0, y0, x1, y1):
    """A COCO polygon; pycocotools fills rows y0..y1-1 and columns x0..x1-1."""
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def expected():
    """Mask of every annotation id, built by hand."""
    m = {k: np.zeros((H, W), np.uint8) for k in (1, 2, 3, 4)}
    m[1][2:5, 9:12] = 1  # box(9, 2, 12, 5): the rightmost object
    m[2][1:3, 1:3] = 1  # two parts: box(1, 1, 3, 3) and box(5, 8, 7, 10)
    m[2][8:10, 5:7] = 1
    m[3][6:10, 4:6] = 1  # crowd, uncompressed RLE
    m[4][0:2, 13:15] = 1
    return m


def refs():
    sent = [dict(sent='the three things', raw='The three things', sent_id=0)]
    return [
        # 3 targets: ann 1 (right), ann 2 (two parts, leftmost), ann 3 (crowd, middle)
        dict(ref_id=0, image_id=1, split='val', ann_id=[1, 2, 3], category_id=[1, 1, 1],
             sentences=sent, no_target=False),
        dict(ref_id=1, image_id=1, split='val', ann_id=[4], category_id=[2],
             sentences=[dict(sent='Top right box', sent_id=1)], no_target=False),
        dict(ref_id=2, image_id=1, split='val', ann_id=[-1], category_id=[],
             sentences=[dict(sent='the purple star', sent_id=2),
                        dict(sent='a dog', sent_id=3)], no_target=True),
        dict(ref_id=3, image_id=1, split='testA', ann_id=[4, 1], category_id=[2, 1],
             sentences=[dict(sent='boxes', sent_id=4)], no_target=False),
        dict(ref_id=4, image_id=1, split='train', ann_id=-1, category_id=[],
             sentences=[dict(sent='a cat', sent_id=5)]),
    ]  # fmt: skip


def write(root, grefs=None, anns=None, fmt='json'):
    m = expected()
    img_dir = root / 'images' / 'mscoco' / 'images' / 'train2014'
    img_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((H, W, 3), 100, np.uint8)).save(img_dir / IMG)
    if anns is None:
        anns = [
            dict(id=1, image_id=1, category_id=1, segmentation=[box(9, 2, 12, 5)], iscrowd=0),
            dict(id=2, image_id=1, category_id=1, iscrowd=0,
                 segmentation=[box(1, 1, 3, 3), box(5, 8, 7, 10)]),
            dict(id=3, image_id=1, category_id=1, segmentation=uncompressed_rle(m[3]), iscrowd=1),
            dict(id=4, image_id=1, category_id=2, iscrowd=0, segmentation=_compressed(m[4])),
        ]  # fmt: skip
    folder = root / 'grefcoco'
    folder.mkdir(exist_ok=True)
    instances = dict(images=[dict(id=1, file_name=IMG, height=H, width=W)], annotations=anns)
    (folder / 'instances.json').write_text(json.dumps(instances))
    grefs = refs() if grefs is None else grefs
    if fmt == 'json':
        (folder / 'grefs(unc).json').write_text(json.dumps(grefs))
    else:
        (folder / 'grefs(unc).p').write_bytes(pickle.dumps(grefs, protocol=2))
    return str(root)


def _compressed(mask):
    rle = mask_utils.encode(np.asfortranarray(mask))
    return dict(size=rle['size'], counts=rle['counts'].decode('ascii'))


@pytest.fixture
def root(tmp_path):
    return write(tmp_path)


def val(root, **kw):
    return GRefCOCODataset(data_root=root, split='val', test_mode=True, **kw)


def test_merged_masks_match_hand_built(root):
    ds = val(root)
    m = expected()
    assert len(ds) == 4  # one sample per sentence: 1 + 1 + 2
    three, one, none1, none2 = (ds[i] for i in range(4))
    assert np.array_equal(three['gt_masks'], (m[1] | m[2] | m[3])[None])
    assert (three['num_targets'], three['no_target']) == (3, False)
    assert np.array_equal(one['gt_masks'], m[4][None])
    for x in (none1, none2):
        assert x['gt_masks'].shape == (1, H, W) and not x['gt_masks'].any()
        assert (x['num_targets'], x['no_target']) == (0, True)
        assert x['answer'] == f'{SEG_TOKEN}.'
    assert three['question'] == '<image>\n What is the three things in this image? ' + (
        'Please output segmentation mask.'
    )
    assert one['question'].startswith('<image>\n What is top right box in')


def test_per_object_order_is_left_to_right(root):
    ds = val(root, target_mode='per_object')
    m = expected()
    x = ds[0]
    # leftmost columns: ann 2 -> 1, ann 3 -> 4, ann 1 -> 9
    assert np.array_equal(x['gt_masks'], np.stack([m[2], m[3], m[1]]))
    assert x['answer'] == f'{SEG_TOKEN}, {SEG_TOKEN} and {SEG_TOKEN}.'
    assert ds[1]['answer'] == f'{SEG_TOKEN}.'
    # testA ref lists [4, 1]: ann 1 (column 9) comes before ann 4 (column 13)
    x = GRefCOCODataset(data_root=root, split='testA', test_mode=True, target_mode='per_object')[0]
    assert np.array_equal(x['gt_masks'], np.stack([m[1], m[4]]))
    again = val(root, target_mode='per_object')[0]
    assert np.array_equal(again['gt_masks'], ds[0]['gt_masks'])


def test_crowd_skip_as_gres(root):
    m = expected()
    x = val(root, crowd='skip')[0]
    assert np.array_equal(x['gt_masks'], (m[1] | m[2])[None]) and x['num_targets'] == 2


def test_training_answers_and_rejection(root):
    ds = GRefCOCODataset(
        data_root=root, split='val', target_mode='per_object', reject_answers=['No such thing.']
    )
    m = expected()
    three, one, none = ds[0], ds[1], ds[2]
    assert three['answer'].count(SEG_TOKEN) == 3 and three['gt_masks'].shape == (3, H, W)
    assert one['answer'].count(SEG_TOKEN) == 1 and np.array_equal(one['gt_masks'], m[4][None])
    assert none['answer'] == 'No such thing.' and none['gt_masks'].shape == (0, H, W)
    assert none['no_target'] is True and none['conversations'][0]['answer'] == 'No such thing.'
    # LISA's form: reject_answers=None keeps a <SEG> answer and an empty mask
    lisa = GRefCOCODataset(data_root=root, split='val', reject_answers=None)[2]
    assert lisa['answer'].count(SEG_TOKEN) == 1 and lisa['gt_masks'].shape == (1, H, W)
    assert not lisa['gt_masks'].any()


def test_several_expressions_per_image(root):
    ds = GRefCOCODataset(data_root=root, split='val', num_classes_per_sample=3, seed=1)
    assert len(ds) == 1
    x = ds[0]
    segs = [t['answer'].count(SEG_TOKEN) for t in x['conversations']]
    assert len(segs) == 3 and sum(segs) == len(x['gt_masks'])
    assert x['no_target'] is False


def test_pickle_release_and_pipeline(tmp_path):
    root = write(tmp_path, fmt='pickle')
    ds = val(root)
    assert len(ds) == 4
    # the default meta keys carry no_target / num_targets to the metric
    info = ds.get_data_info(2)
    info.update(img=np.zeros((4, 4, 3), np.uint8), sam_image=None)
    out = PackLISAInputs()(info)
    assert out['data_samples'].no_target is True and out['data_samples'].num_targets == 0


def test_registry_and_bad_input(tmp_path):
    root = write(tmp_path)
    ds = DATASETS.build(dict(type='GRefCOCODataset', data_root=root, split='testA', test_mode=True))
    assert len(ds) == 1
    with pytest.raises(ValueError, match='target_mode'):
        GRefCOCODataset(data_root=root, target_mode='stacked')
    with pytest.raises(ValueError, match='reject_answers'):
        GRefCOCODataset(data_root=root, reject_answers=['It is <SEG>.'])
    bad = refs()
    bad[2]['ann_id'] = [-1, 4]
    with pytest.raises(ValueError, match=r'no-target but has ann_id \[-1, 4\]'):
        val(write(tmp_path / 'b1', grefs=bad))
    bad = refs()
    bad[0]['ann_id'] = [1, 99]
    with pytest.raises(ValueError, match='no annotation with id 99'):
        val(write(tmp_path / 'b2', grefs=bad))
    with pytest.raises(FileNotFoundError, match=r'grefs\(unc\)'):
        val(str(tmp_path / 'nowhere'))


def test_check_dataset_counts_targets_and_lists_bad_refs(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location(
        'check_dataset', osp.join(REPO, 'tools', 'misc', 'check_dataset.py')
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    bad = refs()
    bad[1]['ann_id'] = [77]  # no such annotation: skipped at load
    root = write(tmp_path, grefs=bad)
    config = tmp_path / 'check.py'
    config.write_text(
        "val_dataloader = dict(dataset=dict(type='GRefCOCODataset',\n"
        f"    data_root='{root}', split='val', test_mode=True, pipeline=[]))\n"
    )
    monkeypatch.setattr(sys, 'argv', ['check_dataset.py', str(config), '--split', 'val'])
    assert tool.main() == 1
    out = capsys.readouterr().out
    assert '3 samples checked, 1 bad' in out and 'no annotation with id 77' in out
    assert 'targets per sample: 2+ targets 1, no target 2' in out


@pytest.mark.parametrize(
    'config',
    [
        '_base_/datasets/grefcoco.py',
        '_base_/datasets/grefcoco_per-object.py',
        'lisa/lisa_llava-v1-7b_sam-vit-h_eval_grefcoco.py',
        'lisa/lisa_llava-llama2-13b_sam-vit-h_eval_grefcoco.py',
    ],
)
def test_configs_build_their_splits(root, config):
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    loaders = ['test_dataloader'] + (['train_dataloader'] if cfg.train_dataloader else [])
    for loader in loaders:
        ds = DATASETS.build(dict(cfg[loader].dataset, data_root=root, pipeline=[]))
        assert len(ds) == (1 if loader == 'train_dataloader' else 4)
        per_object = 'per-object' in config
        assert ds.target_mode == ('per_object' if per_object else 'merged')
    assert cfg.test_evaluator.type == 'GRefCOCOMetric'
    assert cfg.test_dataloader.dataset.split == 'val' and cfg.test_dataloader.dataset.test_mode
    for split, size in (('testA', 1), ('testB', None)):
        ds_cfg = dict(cfg.test_dataloader.dataset, data_root=root, pipeline=[], split=split)
        if size is None:  # the fixture has no testB ref
            with pytest.raises(ValueError, match="no ref in split 'testB'"):
                DATASETS.build(ds_cfg)
        else:
            assert len(DATASETS.build(ds_cfg)) == size
