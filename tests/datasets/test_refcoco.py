"""RefCOCODataset on REFER-format fixtures written by the tests (refs(unc).p pickle,
COCO instances.json with polygons, multi-part polygons, compressed and uncompressed RLE,
overlapping objects): masks pixel by pixel, splits, prompts, bad input, tools/test.py."""

import copy
import json
import os
import os.path as osp
import pickle

import numpy as np
import pytest
from data_writers import uncompressed_rle
from eval_runner import evaluate_with_test_tool
from mmengine.config import Config
from mmengine.dataset import Compose
from PIL import Image
from processing import process_packed, tiny_processor
from pycocotools import mask as mask_utils
from tool_runner import DEMO, REPO, output, run_tool

from lisakit.datasets import ANSWER_LIST, SHORT_QUESTION_LIST, RefCOCODataset
from lisakit.datasets.coco_masks import segmentation_to_mask
from lisakit.datasets.refcoco import load_refer_pickle
from lisakit.registry import DATASETS

IMG_SIZES = {1: (12, 16), 2: (10, 10), 3: (8, 8)}  # image id -> (height, width)


def box(x0, y0, x1, y1):
    """A COCO polygon; pycocotools fills rows y0..y1-1 and columns x0..x1-1."""
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def expected_masks():
    """Expected mask of every annotation id."""
    m = {k: np.zeros(IMG_SIZES[i], np.uint8) for k, i in ((11, 1), (12, 1), (13, 1), (21, 2))}
    m[11][1:5, 1:6] = 1  # box(1, 1, 6, 5)
    m[12][2:6, 8:12] = 1  # two overlapping parts, united
    m[12][4:9, 10:15] = 1
    m[13][3:8, 4:9] = 1  # overlaps ann 11 (another object)
    m[21][6:8, 2:4] = 1  # uncompressed RLE
    m[31] = np.zeros(IMG_SIZES[3], np.uint8)
    m[31][0:4, 0:4] = 1
    return m


def _rle(mask, compressed=True):
    rle = mask_utils.encode(np.asfortranarray(mask))
    if compressed:
        return dict(size=rle['size'], counts=rle['counts'].decode('ascii'))  # as in JSON
    return uncompressed_rle(mask)


def make_refer(root, dataset='refcoco', split_by='unc', refs=None, anns=None):
    """Write a REFER dataset folder and its images; returns the data_root."""
    masks = expected_masks()
    img_dir = root / 'images' / 'mscoco' / 'images' / 'train2014'
    img_dir.mkdir(parents=True, exist_ok=True)
    images = []
    for img_id, (h, w) in IMG_SIZES.items():
        name = f'COCO_train2014_{img_id:012d}.jpg'
        Image.fromarray(np.full((h, w, 3), 120, np.uint8)).save(img_dir / name)
        images.append(dict(id=img_id, file_name=name, height=h, width=w))
    if anns is None:
        anns = [
            dict(id=11, image_id=1, category_id=1, segmentation=[box(1, 1, 6, 5)]),
            dict(
                id=12, image_id=1, category_id=1, segmentation=[box(8, 2, 12, 6), box(10, 4, 15, 9)]
            ),
            dict(id=13, image_id=1, category_id=2, segmentation=_rle(masks[13])),
            dict(id=21, image_id=2, category_id=1, segmentation=_rle(masks[21], False), iscrowd=1),
            dict(id=31, image_id=3, category_id=1, segmentation=[box(0, 0, 4, 4)]),
        ]
    if refs is None:
        refs = [
            ref(1, 11, 1, 'train', ['Left Box', 'the small one']),
            ref(2, 12, 1, 'train', ['two parts']),
            ref(3, 13, 1, 'val', ['  Overlap A ', 'overlap b']),
            ref(4, 21, 2, 'val', ['crowd']),
            ref(5, 31, 3, 'testA', ['a person']),
            ref(6, 31, 3, 'testB', ['a thing']),
        ]
    folder = root / dataset
    folder.mkdir(parents=True, exist_ok=True)
    categories = [dict(id=1, name='thing'), dict(id=2, name='other')]
    (folder / 'instances.json').write_text(
        json.dumps(dict(images=images, annotations=anns, categories=categories))
    )
    with open(folder / f'refs({split_by}).p', 'wb') as f:
        pickle.dump(refs, f, protocol=2)
    return root


def ref(ref_id, ann_id, image_id, split, sents):
    return dict(
        ref_id=ref_id,
        ann_id=ann_id,
        image_id=image_id,
        split=split,
        category_id=1,
        sentences=[
            dict(sent=s, raw=s, tokens=s.split(), sent_id=ref_id * 10 + k)
            for k, s in enumerate(sents)
        ],
    )


@pytest.fixture()
def refer_root(tmp_path):
    return make_refer(tmp_path / 'refer_seg')


def test_eval_masks_pixel_by_pixel_and_prompts(refer_root):
    ds = RefCOCODataset(str(refer_root), split='val', test_mode=True)
    masks = expected_masks()
    assert len(ds) == 3  # every sentence its own sample
    infos = [ds.get_data_info(i) for i in range(3)]
    assert [i['ref_ids'] for i in infos] == [[3], [3], [4]]
    for info, ann in zip(infos, (13, 13, 21)):
        assert info['gt_masks'].dtype == np.uint8 and info['gt_masks'].shape == (
            1,
            *masks[ann].shape,
        )
        np.testing.assert_array_equal(info['gt_masks'][0], masks[ann])
        assert info['answer'] == '<SEG>.'
    assert infos[0]['question'] == (
        '<image>\n What is overlap a in this image? Please output segmentation mask.'
    )
    assert 'What is overlap b in' in infos[1]['question']
    assert infos[2]['img_path'].endswith(
        'images/mscoco/images/train2014/COCO_train2014_000000000002.jpg'
    )


def test_train_samples_multi_part_and_templates(refer_root):
    ds = RefCOCODataset(str(refer_root), split='train', seed=3)
    masks = expected_masks()
    assert len(ds) == 3  # one per (ref, sentence)
    by_text = {ds.get_data_info(i)['texts'][0]: ds.get_data_info(i) for i in range(3)}
    np.testing.assert_array_equal(by_text['Left Box']['gt_masks'][0], masks[11])
    np.testing.assert_array_equal(by_text['two parts']['gt_masks'][0], masks[12])  # union
    info = by_text['Left Box']
    assert info['question'] in [q.format(class_name='left box') for q in SHORT_QUESTION_LIST]
    assert info['answer'] in ANSWER_LIST
    again = RefCOCODataset(str(refer_root), split='train', seed=3)
    assert [again.get_data_info(i)['question'] for i in range(3)] == [
        ds.get_data_info(i)['question'] for i in range(3)
    ]


def test_num_classes_per_sample_groups_an_image(refer_root):
    ds = RefCOCODataset(str(refer_root), split='train', num_classes_per_sample=3, seed=1)
    assert len(ds) == 1  # image 1 holds all train refs
    info = ds.get_data_info(0)
    assert sorted(info['texts']) == ['Left Box', 'the small one', 'two parts']
    assert len(info['conversations']) == 3 and info['gt_masks'].shape == (3, 12, 16)
    masks = expected_masks()
    ann_of = {'Left Box': 11, 'the small one': 11, 'two parts': 12}
    for k, (text, mask, turn) in enumerate(
        zip(info['texts'], info['gt_masks'], info['conversations'])
    ):
        np.testing.assert_array_equal(mask, masks[ann_of[text]])  # turn k asks for mask k
        questions = [q.format(class_name=text.lower()) for q in SHORT_QUESTION_LIST]
        if k:  # <image> only in the first turn
            questions = [q.replace('<image>\n', '') for q in questions]
        assert turn['question'] in questions and turn['answer'] in ANSWER_LIST
    assert info['question'] == info['conversations'][0]['question']
    two = RefCOCODataset(str(refer_root), split='train', num_classes_per_sample=2, seed=1)
    assert len(two.get_data_info(0)['texts']) == 2


def test_split_selection_and_refcocog_umd(tmp_path, refer_root):
    def count(split):
        return len(RefCOCODataset(str(refer_root), split=split, test_mode=True))

    assert (count('train'), count('val'), count('testA'), count('testB'), count('test')) == (
        3,
        3,
        1,
        1,
        2,
    )
    with pytest.raises(ValueError, match=r"no ref in split 'testC'; its splits are \['testA'"):
        count('testC')
    with pytest.raises(ValueError, match='split='):
        RefCOCODataset(str(refer_root), split='validation')
    root = make_refer(tmp_path / 'g', dataset='refcocog', split_by='umd')
    assert len(RefCOCODataset(str(root), dataset='refcocog', split='val', test_mode=True)) == 3


def test_pipeline_packs_a_refcoco_sample(refer_root, tiny_cfg):
    ds = RefCOCODataset(str(refer_root), split='train', num_classes_per_sample=3)
    steps = copy.deepcopy(tiny_cfg.test_dataloader.dataset.pipeline)
    packed = Compose(steps)(ds.get_data_info(0))
    assert packed['inputs']['sam_image'].shape == (3, 64, 64)
    out = process_packed(tiny_processor(tiny_cfg, max_text_length=128), packed)
    assert out['data_sample'].gt_masks.shape == (3, 12, 16)  # one per turn


# ---------------------------------------------------------------- bad input


def test_missing_files_are_named(tmp_path, refer_root):
    with pytest.raises(FileNotFoundError, match=r'refs\(umd\).p'):
        RefCOCODataset(str(refer_root), split_by='umd')
    os.remove(refer_root / 'refcoco' / 'instances.json')
    with pytest.raises(FileNotFoundError, match='instances.json'):
        RefCOCODataset(str(refer_root))
    (refer_root / 'refcoco' / 'instances.json').write_text('{"images": [')
    with pytest.raises(ValueError, match='instances.json: invalid JSON'):
        RefCOCODataset(str(refer_root))


def test_malicious_pickle_is_refused(tmp_path, refer_root):
    marker = tmp_path / 'pwned'

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    with open(refer_root / 'refcoco' / 'refs(unc).p', 'wb') as f:
        pickle.dump([Evil()], f)
    with pytest.raises(ValueError, match=r'refs\(unc\).p: not a valid REFER pickle.*refusing'):
        RefCOCODataset(str(refer_root))
    assert not marker.exists()
    with open(refer_root / 'refcoco' / 'refs(unc).p', 'wb') as f:
        pickle.dump({'not': 'a list'}, f)
    with pytest.raises(ValueError, match='expected a pickled list'):
        RefCOCODataset(str(refer_root))


def test_python2_pickle_with_latin1_text(tmp_path):
    # REFER's files are Python 2 pickles; str there is bytes (here b'caf\xe9', not UTF-8)
    path = tmp_path / 'refs(unc).p'
    path.write_bytes(b'\x80\x02]q\x00}q\x01(U\x04sentq\x02U\x04caf\xe9q\x03ua.')
    assert load_refer_pickle(str(path)) == [{'sent': 'caf\u00e9'}]


def _bad_refer(root):
    """Train split: one good ref and four bad ones."""
    anns = [
        dict(id=11, image_id=1, segmentation=[box(1, 1, 6, 5)]),
        dict(id=12, image_id=1, segmentation=[[1, 1, 5, 5]]),  # 2-point polygon
        dict(id=13, image_id=1),  # no segmentation
        dict(id=31, image_id=3, segmentation=[box(0, 0, 4, 4)]),
    ]
    refs = [
        ref(1, 11, 1, 'train', ['good']),
        ref(2, 12, 1, 'train', ['short polygon']),
        ref(3, 13, 1, 'train', ['no segmentation']),
        ref(4, 31, 3, 'train', ['missing image']),
        dict(ref_id=5, ann_id=11, split='train'),  # no image_id / sentences
    ]
    make_refer(root, refs=refs, anns=anns)
    os.remove(root / 'images/mscoco/images/train2014/COCO_train2014_000000000003.jpg')
    return root


def test_bad_annotations_raise_or_are_skipped(tmp_path):
    root = _bad_refer(tmp_path / 'bad')
    with pytest.raises(
        ValueError, match=r'instances.json: annotation 12 \(ref 2\): polygon 0 has 2'
    ):
        RefCOCODataset(str(root))
    ds = RefCOCODataset(str(root), on_error='skip')
    assert len(ds) == 1 and ds.get_data_info(0)['texts'] == ['good']
    assert len(ds.skipped) == 4
    text = '\n'.join(f'{p} | {r}' for p, r in ds.skipped)
    assert 'polygon 0 has 2 point(s)' in text and "missing keys ['segmentation']" in text
    assert "misses keys ['image_id', 'sentences']" in text
    assert 'COCO_train2014_000000000003.jpg | ' in text and 'not found' in text
    assert all(p.endswith(('instances.json', 'refs(unc).p', '.jpg')) for p, _ in ds.skipped)


def test_empty_segmentation_is_an_empty_mask_as_in_lisa(tmp_path):
    anns = [dict(id=11, image_id=1, segmentation=[])]
    root = make_refer(tmp_path / 'empty', refs=[ref(1, 11, 1, 'val', ['nothing'])], anns=anns)
    info = RefCOCODataset(str(root), split='val', test_mode=True).get_data_info(0)
    h, w = IMG_SIZES[1]
    assert info['gt_masks'].shape == (1, h, w) and info['gt_masks'].dtype == np.uint8
    assert not info['gt_masks'].any()
    with pytest.raises(ValueError, match=r'annotation 11 \(ref 1\): empty segmentation'):
        RefCOCODataset(str(root), split='val', empty_segmentation='error')
    with pytest.raises(ValueError, match="empty_segmentation='skip'"):
        RefCOCODataset(str(root), split='val', empty_segmentation='skip')


def test_polygon_outside_and_bad_rle(tmp_path):
    with pytest.raises(ValueError, match='polygon 0 spans x 20..30, y 20..30, outside the 16x12'):
        segmentation_to_mask([box(20, 20, 30, 30)], 12, 16)
    # COCO policy: a polygon partly outside is clipped; with a tolerance it is an error
    clipped = segmentation_to_mask([box(10, 8, 20, 14)], 12, 16)
    want = np.zeros((12, 16), np.uint8)
    want[8:, 10:] = 1
    np.testing.assert_array_equal(clipped, want)
    with pytest.raises(ValueError, match='polygon 1 spans x 10..20, y 8..14, outside'):
        segmentation_to_mask([box(10, 8, 20, 14)], 12, 16, first_index=1, outside_tolerance=1)
    rle = _rle(expected_masks()[13])
    truncated = dict(rle, counts=rle['counts'][:-2])
    with pytest.raises(ValueError, match=r'RLE runs add up to \d+ pixels but its size \[12, 16\]'):
        segmentation_to_mask(truncated, 12, 16)
    short_list = _rle(expected_masks()[13], compressed=False)
    short_list['counts'] = short_list['counts'][:-1]
    with pytest.raises(ValueError, match=r'RLE 0 runs add up to \d+ pixels .* has 192; the counts'):
        segmentation_to_mask([short_list], 12, 16)
    with pytest.raises(
        ValueError, match=r'RLE size \[12, 16\] differs from the image size \[8, 8\]'
    ):
        segmentation_to_mask(rle, 8, 8)
    with pytest.raises(ValueError, match='empty segmentation'):
        segmentation_to_mask([], 8, 8)


def test_image_size_mismatch_raises_or_is_replaced_in_training(refer_root):
    path = refer_root / 'images/mscoco/images/train2014/COCO_train2014_000000000001.jpg'
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(path)
    ds = RefCOCODataset(str(refer_root), split='train', pipeline=[])
    with pytest.raises(ValueError, match='is 5x5 .* says 16x12'):
        ds.get_data_info(0)
    skip = RefCOCODataset(str(refer_root), split='train', on_error='skip', pipeline=[])
    assert skip.prepare_data(0) is None and skip.runtime_skips == 1


def test_test_tool_reports_ciou_on_a_refcoco_split(refer_root, tmp_path, tiny_cfg):
    metrics, log = evaluate_with_test_tool(
        tmp_path,
        tiny_cfg,
        'test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(\n'
        f"    _delete_=True, type='RefCOCODataset', data_root='{refer_root}',\n"
        "    dataset='refcoco', split_by='unc', split='val', test_mode=True,\n"
        '    pipeline={{_base_.test_pipeline}}))\n'
        "test_evaluator = dict(_delete_=True, type='ReasonSegMetric')\n",
    )
    assert 0.0 <= metrics['cIoU'] <= 1.0 and 'gIoU' in metrics
    assert 'ReasonSegMetric over 3 masks' in log


@pytest.mark.parametrize(
    'config, dataset, split_by',
    [
        ('refcoco', 'refcoco', 'unc'),
        ('refcoco+', 'refcoco+', 'unc'),
        ('refcocog', 'refcocog', 'umd'),
    ],
)
def test_configs_build_their_splits(tmp_path, config, dataset, split_by):
    root = make_refer(tmp_path / 'refer_seg', dataset=dataset, split_by=split_by)
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', f'{config}.py'))
    for loader, size in (('train_dataloader', 3), ('test_dataloader', 3)):
        ds_cfg = dict(cfg[loader].dataset, data_root=str(root), pipeline=[])
        ds = DATASETS.build(ds_cfg)
        assert (ds.dataset, ds.split_by, len(ds)) == (dataset, split_by, size)
    assert cfg.test_evaluator.type == 'ReasonSegMetric'


def test_check_dataset_tool_lists_bad_refcoco_samples(refer_root, tmp_path):
    img_dir = refer_root / 'images/mscoco/images/train2014'
    os.remove(img_dir / 'COCO_train2014_000000000002.jpg')  # ref 4: found missing at load
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(img_dir / 'COCO_train2014_000000000001.jpg')
    config = tmp_path / 'check.py'
    config.write_text(
        f"_base_ = ['{DEMO}']\n"
        "val_dataloader = dict(dataset=dict(_delete_=True, type='RefCOCODataset',\n"
        f"    data_root='{refer_root}', split='val', test_mode=True, pipeline=[]))\n"
    )
    proc = run_tool('misc/check_dataset.py', str(config), '--split', 'val')
    assert proc.returncode == 1, output(proc)
    assert '2 samples checked, 3 bad' in proc.stdout  # 1 skipped ref + 2 sentences of image 1
    assert 'COCO_train2014_000000000002.jpg' in proc.stdout and 'not found' in proc.stdout
    assert proc.stdout.count('is 5x5 (after EXIF rotation)') == 2
