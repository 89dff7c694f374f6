"""PartSegDataset (PACO-LVIS, PASCAL-Part) on generated COCO-format fixtures."""

import json
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image
from tool_runner import REPO

from lisakit.datasets import PartSegDataset
from lisakit.datasets.coco_masks import segmentation_to_mask
from lisakit.datasets.part_seg import category_name, render_name
from lisakit.registry import DATASETS

H, W = 12, 16
CATEGORIES = [
    dict(id=1, name='dog:leg_(left)'),
    dict(id=2, name='dog:head'),
    dict(id=3, name='trash_can_(bin)'),
]


def box(x0, y0, x1, y1):
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def make_parts(root, ann_file='parts.json', anns=None, img_dir='images'):
    """Two images (the second without annotations) and a COCO-format part file."""
    (root / img_dir / 'train2017').mkdir(parents=True, exist_ok=True)
    images = []
    for img_id in (1, 2):
        name = f'train2017/{img_id:012d}.jpg'
        Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(root / img_dir / name)
        images.append(dict(id=img_id, file_name=name, height=H, width=W))
    if anns is None:
        anns = [
            dict(id=10, image_id=1, category_id=1, segmentation=[box(1, 1, 5, 6)]),
            dict(id=11, image_id=1, category_id=2, segmentation=[box(8, 2, 14, 8)]),
            dict(id=12, image_id=1, category_id=3, segmentation=[box(0, 8, 4, 11)]),
        ]
    data = dict(images=images, annotations=anns, categories=CATEGORIES)
    (root / ann_file).parent.mkdir(parents=True, exist_ok=True)
    (root / ann_file).write_text(json.dumps(data))
    return root


def box_mask(x0, y0, x1, y1):
    return segmentation_to_mask([box(x0, y0, x1, y1)], H, W)


def test_category_names_as_lisa_reads_them():
    assert category_name('dog:leg_(left)') == ('dog', 'leg')
    assert category_name(' trash_can_(bin) ') == 'trash_can'
    assert category_name('aeroplane:body') == ('aeroplane', 'body')
    with pytest.raises(ValueError, match='more than one'):
        category_name('a:b:c')
    assert render_name(('dog', 'leg'), None) == 'dog leg'
    rendered = {render_name(('dog', 'leg'), np.random.default_rng(s)) for s in range(20)}
    assert rendered == {'dog leg', 'the leg of the dog'}


def test_eval_one_sample_per_instance_with_its_mask(tmp_path):
    root = make_parts(tmp_path)
    ds = PartSegDataset(str(root), ann_file='parts.json', img_dir='images', test_mode=True)
    assert len(ds) == 3  # image 2 has no annotation
    infos = [ds.get_data_info(i) for i in range(3)]
    assert [i['class_names'] for i in infos] == [['dog leg'], ['dog head'], ['trash_can']]
    np.testing.assert_array_equal(infos[1]['gt_masks'][0], box_mask(8, 2, 14, 8))
    assert infos[0]['gt_masks'].shape == (1, H, W) and infos[0]['gt_masks'].dtype == np.uint8
    assert infos[0]['question'] == (
        '<image>\n What is dog leg in this image? Please output segmentation mask.'
    )
    assert infos[0]['answer'] == '<SEG>.'


def test_training_draws_instances_seeded(tmp_path):
    root = make_parts(tmp_path)
    ds = PartSegDataset(
        str(root), ann_file='parts.json', img_dir='images', num_classes_per_sample=2
    )
    assert len(ds) == 1
    info = ds.get_data_info(0)
    assert ds.get_data_info(0)['class_names'] == info['class_names']  # seeded: same draw
    assert len(info['class_names']) == len(info['conversations']) == 2
    assert info['gt_masks'].shape == (2, H, W)
    leg, head = box_mask(1, 1, 5, 6), box_mask(8, 2, 14, 8)
    masks = {'dog leg': leg, 'the leg of the dog': leg, 'dog head': head}
    masks.update({'the head of the dog': head, 'trash_can': box_mask(0, 8, 4, 11)})
    for name, mask, turn in zip(info['class_names'], info['gt_masks'], info['conversations']):
        np.testing.assert_array_equal(mask, masks[name])
        assert name in turn['question'] and turn['answer'].count('<SEG>') == 1
    draws = set()
    for seed in range(12):
        other = PartSegDataset(str(root), ann_file='parts.json', img_dir='images', seed=seed)
        draws.add(tuple(other.get_data_info(0)['class_names']))
    assert len(draws) > 2  # instances and phrasings vary with the seed


def test_bad_annotations_raise_or_are_skipped(tmp_path):
    anns = [
        dict(id=10, image_id=1, category_id=1, segmentation=[box(1, 1, 5, 6)]),
        dict(id=11, image_id=1, category_id=9, segmentation=[box(8, 2, 14, 8)]),  # category
        dict(id=12, image_id=1, category_id=2, segmentation=[[1, 1, 5, 5]]),  # 2 points
    ]
    root = make_parts(tmp_path, anns=anns)
    with pytest.raises(ValueError, match=r'parts.json: annotation 11: unknown image / category'):
        PartSegDataset(str(root), ann_file='parts.json', img_dir='images')
    ds = PartSegDataset(str(root), ann_file='parts.json', img_dir='images', on_error='skip')
    assert len(ds.skipped) == 2 and 'polygon 0 has 2 point(s)' in ds.skipped[1][1]
    assert len(ds.get_data_info(0)['class_names']) == 1
    with pytest.raises(FileNotFoundError, match='nope.json: annotation file not found'):
        PartSegDataset(str(root), ann_file='nope.json')
    (root / 'broken.json').write_text('{"images": [')
    with pytest.raises(ValueError, match='broken.json: invalid JSON'):
        PartSegDataset(str(root), ann_file='broken.json')


def test_image_size_mismatch_names_the_file(tmp_path):
    root = make_parts(tmp_path)
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(root / 'images/train2017/000000000001.jpg')
    ds = PartSegDataset(str(root), ann_file='parts.json', img_dir='images', test_mode=True)
    with pytest.raises(ValueError, match=r'000000000001.jpg: the image is 5x5 but .* 16x12'):
        ds.get_data_info(0)


@pytest.mark.parametrize('config', ['paco_lvis', 'pascal_part'])
def test_configs_build_their_splits(tmp_path, config):
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', f'{config}.py'))
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        ds_cfg = loader.dataset
        make_parts(tmp_path, ann_file=ds_cfg.ann_file, img_dir=ds_cfg.img_dir)
        ds = DATASETS.build(dict(ds_cfg, data_root=str(tmp_path), pipeline=[]))
        assert type(ds).__name__ == 'PartSegDataset'
        assert len(ds) == (3 if ds.test_mode else 1)
        assert ds.get_data_info(0)['gt_masks'].any()
