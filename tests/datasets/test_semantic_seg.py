"""SemanticSegDataset on ADE20K- and COCO-Stuff-format folders written by the tests:
label maps pixel by pixel (reduce_zero_label, 255, ignored classes), class-name
queries, num_classes_per_sample, determinism and bad input."""

import copy
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import Compose
from PIL import Image
from processing import process_packed, tiny_processor
from tool_runner import REPO

from lisakit.datasets import ANSWER_LIST, SHORT_QUESTION_LIST, SemanticSegDataset
from lisakit.datasets.semseg_classes import (
    ADE20K_CLASSES,
    COCOSTUFF_CLASSES,
    load_class_names,
)
from lisakit.registry import DATASETS

H, W = 6, 8


def ade_label():
    """Raw ADE20K values: 0 = other, 1 = wall, 3 = sky, 5 = tree, 255 = unlabelled."""
    raw = np.zeros((H, W), np.uint8)
    raw[0:2, :] = 3
    raw[2:5, 0:4] = 1
    raw[2:5, 4:6] = 5
    raw[5, 0:2] = 255
    return raw


def write_pair(root, split, stem, raw, size=(H, W), img_dir='images', seg_dir='annotations'):
    (root / img_dir / split).mkdir(parents=True, exist_ok=True)
    (root / seg_dir / split).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), 100, np.uint8)).save(root / img_dir / split / f'{stem}.jpg')
    if raw is not None:
        Image.fromarray(raw).save(root / seg_dir / split / f'{stem}.png')


@pytest.fixture()
def ade_root(tmp_path):
    root = tmp_path / 'ade20k'
    write_pair(root, 'training', 'a', ade_label())
    write_pair(root, 'validation', 'v', ade_label())
    return root


def expected(raw, value):
    """LISA's class mask for raw ADE value ``value``: 1 on it, 255 on raw 0 / 255."""
    mask = (raw == value).astype(np.uint8)
    mask[(raw == 0) | (raw == 255)] = 255
    return mask


def test_reduce_zero_label_pixel_by_pixel(ade_root):
    ds = SemanticSegDataset(str(ade_root), split='validation', test_mode=True)
    label = ds.read_label(str(ade_root / 'annotations/validation/v.png'))
    want = ade_label().astype(np.int64) - 1
    want[(ade_label() == 0) | (ade_label() == 255)] = 255
    np.testing.assert_array_equal(label, want)
    assert ds.present_classes(label) == [0, 2, 4]  # wall, sky, tree


def test_eval_one_sample_per_class_present(ade_root):
    ds = SemanticSegDataset(str(ade_root), split='validation', test_mode=True)
    assert len(ds) == 3 and ds.metainfo['classes'] == ADE20K_CLASSES
    raw = ade_label()
    for i, (name, value) in enumerate((('wall', 1), ('sky', 3), ('tree', 5))):
        info = ds.get_data_info(i)
        assert info['question'] == (
            f'<image>\n What is {name} in this image? Please output segmentation mask.'
        )
        assert info['answer'] == '<SEG>.' and info['class_names'] == [name]
        assert info['gt_masks'].shape == (1, H, W) and info['gt_masks'].dtype == np.uint8
        np.testing.assert_array_equal(info['gt_masks'][0], expected(raw, value))


def test_training_draws_classes_seeded(ade_root):
    ds = SemanticSegDataset(str(ade_root), num_classes_per_sample=2, seed=5)
    assert len(ds) == 1
    info = ds.get_data_info(0)
    names = info['class_names']
    assert len(names) == 2 and set(names) <= {'wall', 'sky', 'tree'}
    raw_value = {'wall': 1, 'sky': 3, 'tree': 5}
    for name, mask in zip(names, info['gt_masks']):
        np.testing.assert_array_equal(mask, expected(ade_label(), raw_value[name]))
    first, second = info['conversations']  # one turn per class, in gt_masks order
    assert first['question'] in [q.format(class_name=names[0]) for q in SHORT_QUESTION_LIST]
    assert second['question'] in [
        q.format(class_name=names[1]).replace('<image>\n', '') for q in SHORT_QUESTION_LIST
    ]
    assert first['answer'] in ANSWER_LIST and second['answer'] in ANSWER_LIST
    again = SemanticSegDataset(str(ade_root), num_classes_per_sample=2, seed=5).get_data_info(0)
    assert again['class_names'] == names and again['question'] == info['question']
    draws = {
        tuple(ds.get_data_info(0)['class_names'])
        for ds in (
            SemanticSegDataset(str(ade_root), seed=s, serialize_data=False) for s in range(12)
        )
    }
    assert len(draws) > 1  # the seed changes the draw
    many = SemanticSegDataset(str(ade_root), num_classes_per_sample=5).get_data_info(0)
    assert sorted(many['class_names']) == ['sky', 'tree', 'wall']  # all present, no more


def test_pipeline_packs_a_multi_class_sample(ade_root, tiny_cfg):
    ds = SemanticSegDataset(str(ade_root), num_classes_per_sample=3)
    steps = copy.deepcopy(tiny_cfg.test_dataloader.dataset.pipeline)
    packed = Compose(steps)(ds.get_data_info(0))
    assert packed['data_samples'].gt_masks.shape == (3, H, W)
    # the demo's limit (64 text tokens, a hard cut as LISA's) cuts the third turn's <SEG>:
    # the data preprocessor drops its mask too
    out = process_packed(tiny_processor(tiny_cfg), copy.deepcopy(packed))
    assert out['data_sample'].gt_masks.shape == (2, H, W)
    out = process_packed(tiny_processor(tiny_cfg, max_text_length=128), packed)
    assert out['data_sample'].gt_masks.shape == (3, H, W)
    assert (out['labels'][0] != -100).sum() > 3  # three answers supervised


def test_cocostuff_reader(tmp_path):
    raw = np.full((H, W), 255, np.uint8)  # unlabelled
    raw[0:3, 0:3] = 0  # person
    raw[3:6, 0:4] = 95  # building-other: ignored as in LISA
    raw[0:3, 4:8] = 156  # sky
    write_pair(tmp_path, 'val2017', '000000000139', raw, img_dir='coco', seg_dir='cocostuff')
    ds = SemanticSegDataset(
        str(tmp_path),
        split='val2017',
        classes='cocostuff',
        img_dir='coco/{split}',
        seg_dir='cocostuff/{split}',
        reduce_zero_label=False,
        ignore_classes_containing='-',
        test_mode=True,
    )
    assert [ds.get_data_info(i)['class_names'] for i in range(len(ds))] == [['person'], ['sky']]
    person = (raw == 0).astype(np.uint8)
    person[(raw == 255) | (raw == 95)] = 255
    np.testing.assert_array_equal(ds.get_data_info(0)['gt_masks'][0], person)
    assert COCOSTUFF_CLASSES[95] == 'building-other' and COCOSTUFF_CLASSES[156] == 'sky'
    assert sum('-' in c for c in COCOSTUFF_CLASSES) == 28


def test_class_lists_from_files(tmp_path):
    (tmp_path / 'c.txt').write_text('0: road\n1: car\n\n')
    (tmp_path / 'c.json').write_text(json.dumps(['road', 'car']))
    assert load_class_names(str(tmp_path / 'c.txt')) == ('road', 'car')
    assert load_class_names(str(tmp_path / 'c.json')) == ('road', 'car')
    assert len(load_class_names('ade20k')) == 150
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        load_class_names(str(tmp_path / 'nope.txt'))


def test_label_formats_16_bit_and_palette(tmp_path):
    raw = ade_label()
    write_pair(tmp_path, 'training', 'a', None)
    Image.fromarray(raw.astype(np.uint16)).save(tmp_path / 'annotations/training/a.png')
    ds = SemanticSegDataset(str(tmp_path), test_mode=True)
    assert len(ds) == 3
    pal = Image.fromarray(raw).convert('P')
    pal.putpalette([v for i in range(256) for v in (i, i, i)])
    pal.save(tmp_path / 'annotations/training/a.png')
    np.testing.assert_array_equal(
        SemanticSegDataset(str(tmp_path), test_mode=True).get_data_info(0)['gt_masks'][0],
        expected(raw, 1),
    )


# ---------------------------------------------------------------- bad input


def test_missing_label_and_folder(ade_root):
    write_pair(ade_root, 'training', 'nolabel', None)
    with pytest.raises(FileNotFoundError, match='nolabel.png: label map not found'):
        SemanticSegDataset(str(ade_root))
    ds = SemanticSegDataset(str(ade_root), on_error='skip')
    assert len(ds) == 1 and len(ds.skipped) == 1
    assert ds.skipped[0][0].endswith('annotations/training/nolabel.png')
    with pytest.raises(FileNotFoundError, match='images/nosuch'):
        SemanticSegDataset(str(ade_root), split='nosuch')


def test_bad_label_maps(ade_root):
    val = ade_root / 'annotations' / 'validation'
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(val / 'v.png')
    with pytest.raises(ValueError, match='v.png: label map has mode RGB'):
        SemanticSegDataset(str(ade_root), split='validation', test_mode=True)
    wrong = ade_label()
    wrong[0, 0] = 200  # class 199 after reducing the zero label: not one of 150 classes
    Image.fromarray(wrong).save(val / 'v.png')
    with pytest.raises(ValueError, match=r'label values \[200\] are outside the 150 classes'):
        SemanticSegDataset(str(ade_root), split='validation', test_mode=True)
    (val / 'v.png').write_bytes(b'\x89PNG broken')
    with pytest.raises(ValueError, match='v.png: label map cannot be decoded'):
        SemanticSegDataset(str(ade_root), split='validation', test_mode=True)
    write_pair(ade_root, 'validation', 'w', ade_label())
    ds = SemanticSegDataset(str(ade_root), split='validation', test_mode=True, on_error='skip')
    assert len(ds) == 3 and len(ds.skipped) == 1 and 'cannot be decoded' in ds.skipped[0][1]
    (val / 'w.png').write_bytes(b'')
    with pytest.raises(ValueError, match=r'no usable sample .*\(2 bad label map\(s\)'):
        SemanticSegDataset(str(ade_root), split='validation', test_mode=True, on_error='skip')


def test_size_mismatch_and_empty_label_in_training(ade_root):
    write_pair(ade_root, 'training', 'b', np.zeros((H, W), np.uint8))  # all "other"
    write_pair(ade_root, 'training', 'c', ade_label(), size=(H + 1, W))  # image 8x7
    ds = SemanticSegDataset(str(ade_root), pipeline=[])
    assert len(ds) == 3  # training lists images; labels are read per sample
    with pytest.raises(ValueError, match="b.png: no pixel of any class.*on_error='skip'"):
        ds.get_data_info(1)
    with pytest.raises(ValueError, match='c.png: label map is 8x6 but its image .*c.jpg is 8x7'):
        ds.get_data_info(2)
    skip = SemanticSegDataset(str(ade_root), pipeline=[], on_error='skip')
    assert skip.prepare_data(0) is not None
    assert skip.prepare_data(1) is None and skip.prepare_data(2) is None
    assert skip.runtime_skips == 2


def test_configs_build_their_splits(tmp_path):
    ade = tmp_path / 'ade20k'
    write_pair(ade, 'training', 'a', ade_label())
    write_pair(ade, 'validation', 'v', ade_label())
    coco = tmp_path / 'data'
    raw = np.full((H, W), 255, np.uint8)
    raw[:2] = 0
    for split in ('train2017', 'val2017'):
        write_pair(coco, split, '000000000001', raw, img_dir='coco', seg_dir='cocostuff')
    for config, root, classes in (('ade20k', ade, 3), ('cocostuff', coco, 1)):
        cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', f'{config}.py'))
        train = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=str(root), pipeline=[]))
        val = DATASETS.build(dict(cfg.test_dataloader.dataset, data_root=str(root), pipeline=[]))
        assert len(train) == 1 and len(val) == classes and train.on_error == 'skip'
    assert val.get_data_info(0)['class_names'] == ['person']


def test_lisas_cocostuff_class_file_matches_the_builtin_list(tmp_path):
    from lisakit.datasets.semseg_classes import CLASS_PRESETS, load_class_names

    builtin = CLASS_PRESETS['cocostuff']
    lines = ['0: unlabeled'] + [f'{i + 1}: {name}' for i, name in enumerate(builtin)]
    path = tmp_path / 'cocostuff_classes.txt'
    path.write_text('\n'.join(lines) + '\n')
    assert load_class_names(str(path)) == builtin  # pixel value 0 is 'person', as in LISA


def test_mapillary_classes_and_config(tmp_path):
    root = tmp_path / 'data' / 'mapillary'
    labels = [dict(readable='Bird', name='animal--bird'), dict(readable='Ground Animal')]
    labels += [dict(readable='Curb'), dict(readable='Unlabeled')]
    root.mkdir(parents=True)
    (root / 'config_v2.0.json').write_text(json.dumps(dict(labels=labels, version='2.0')))
    assert load_class_names(str(root / 'config_v2.0.json')) == (
        'bird',
        'ground animal',
        'curb',
        'unlabeled',
    )
    raw = np.full((H, W), 3, np.uint8)
    raw[:3, :4] = 2  # curb
    raw[3:, 4:] = 1  # ground animal
    palette = Image.fromarray(raw, mode='P')  # Mapillary ships palette PNGs
    palette.putpalette([v for i in range(256) for v in (i, i, i)])
    for split in ('training', 'validation'):
        for sub in ('images', 'v2.0/labels'):
            (root / split / sub).mkdir(parents=True)
        Image.fromarray(np.full((H, W, 3), 100, np.uint8)).save(root / split / 'images/m.jpg')
        palette.save(root / split / 'v2.0/labels/m.png')
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', 'mapillary.py'))
    overrides = dict(data_root=str(root), pipeline=[])
    val = DATASETS.build(dict(cfg.val_dataloader.dataset, **overrides))
    train = DATASETS.build(dict(cfg.train_dataloader.dataset, **overrides))
    assert len(train) == 1 and train.on_error == 'skip'
    # every label value is a class, 'unlabeled' too, as LISA reads Mapillary
    names = [val.get_data_info(i)['class_names'] for i in range(len(val))]
    assert names == [['ground animal'], ['curb'], ['unlabeled']]
    np.testing.assert_array_equal(val.get_data_info(1)['gt_masks'][0], (raw == 2).astype(np.uint8))
