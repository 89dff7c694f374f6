"""ReasonSeg: LISA's rasterization pixel by pixel, the dataset, and tools/test.py on a
generated ReasonSeg-format folder."""

import json

import numpy as np
import pytest
from eval_runner import evaluate_with_test_tool
from PIL import Image
from tool_runner import DEMO, output, run_tool

from lisakit.datasets import (
    LoadReasonSegAnnotation,
    MixedDataset,
    ReasonSegDataset,
    load_reasonseg_annotation,
)
from lisakit.datasets.draws import mixed_draw
from lisakit.datasets.samplers import FreshDrawSampler
from lisakit.datasets.templates import ANSWER_LIST, EXPLANATORY_QUESTION_LIST, strip_image_token
from lisakit.datasets.transforms import LoadImageFromFile


def rect(x0, y0, x1, y1):
    """A closed axis-aligned polygon; cv2 fills rows y0..y1 and columns x0..x1 inclusive."""
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def write_sample(folder, name, shapes, texts, is_sentence, size=(20, 24)):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), 90, np.uint8)).save(folder / f'{name}.jpg')
    ann = dict(text=texts, is_sentence=is_sentence, shapes=shapes)
    (folder / f'{name}.json').write_text(json.dumps(ann))
    return folder / f'{name}.json'


def test_rasterization_matches_lisa(tmp_path):
    shapes = [
        dict(label='target', points=rect(1, 1, 12, 12)),  # large target
        dict(label='ignore', points=rect(4, 4, 6, 6)),  # small ignore inside: 255 on top
        dict(label='Ignore region', points=rect(14, 1, 22, 10)),  # ignore (case-insensitive)
        dict(label='target', points=rect(16, 3, 17, 4)),  # small target inside ignore: 1
        dict(label='target', points=rect(2.9, 15.7, 5.2, 18)),  # 2nd part; truncated to int
        dict(label='flag', points=rect(0, 0, 23, 19)),  # skipped
    ]
    path = write_sample(tmp_path, 'a', shapes, ['the thing'], False)
    mask, texts, is_sentence = load_reasonseg_annotation(str(path), (20, 24))
    expected = np.zeros((20, 24), np.uint8)
    expected[1:13, 1:13] = 1
    expected[4:7, 4:7] = 255
    expected[1:11, 14:23] = 255
    expected[3:5, 16:18] = 1
    expected[15:19, 2:6] = 1
    assert mask.dtype == np.uint8 and mask.shape == (20, 24)
    np.testing.assert_array_equal(mask, expected)
    assert texts == ['the thing'] and is_sentence is False


def test_bad_annotations_name_the_file(tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text('{"text": [')
    with pytest.raises(ValueError, match='bad.json: invalid JSON'):
        load_reasonseg_annotation(str(bad), (4, 4))
    bad.write_text('{"text": ["x"]}')
    with pytest.raises(ValueError, match=r"bad.json: missing keys \['shapes'\]"):
        load_reasonseg_annotation(str(bad), (4, 4))
    with pytest.raises(FileNotFoundError, match='nope.json'):
        load_reasonseg_annotation(str(tmp_path / 'nope.json'), (4, 4))


@pytest.mark.parametrize(
    'points', [[], None, [[1, 2, 3], [4, 5, 6]], [[1, float('nan')], [3, 4]], [[1, 'a']]]
)
def test_malformed_shape_points_name_the_file_and_shape(tmp_path, points):
    # cv2 used to fail with a bare assertion (no file) and NaN cast silently to garbage
    shapes = [dict(label='target', points=rect(1, 1, 2, 2)), dict(label='x', points=points)]
    path = write_sample(tmp_path, 'bad', shapes, ['x'], False)
    with pytest.raises(ValueError, match=r'bad.json: shape 1 \(label .x.\): "points" must be'):
        load_reasonseg_annotation(str(path), (4, 4))


def test_cp1252_annotation(tmp_path):
    path = tmp_path / 'c.json'
    path.write_bytes(
        json.dumps(dict(text=['caf\u00e9'], shapes=[]), ensure_ascii=False).encode('cp1252')
    )
    _, texts, _ = load_reasonseg_annotation(str(path), (4, 4))
    assert texts == ['caf\u00e9']


@pytest.fixture()
def reasonseg_root(tmp_path):
    root = tmp_path / 'ReasonSeg'
    target = [dict(label='target', points=rect(2, 2, 9, 9))]
    write_sample(root / 'val', 'img_1', target, ['red shape', 'other'], False)
    write_sample(root / 'val', 'img_2', target, ['What can hold water?'], True)
    write_sample(root / 'train', 'img_3', target, ['a', 'b', 'c'], False)
    return root


def test_dataset_samples_and_query_types(reasonseg_root):
    val = ReasonSegDataset(str(reasonseg_root), split='val', test_mode=True)
    assert len(val) == 2  # first query of each image
    info = val.get_data_info(0)
    assert (
        info['question'] == '<image>\n What is red shape in this image? Please output '
        'segmentation mask.'
    )
    assert info['answer'] == '<SEG>.' and info['query_type'] == 'short'
    assert val.get_data_info(1)['question'].startswith('<image>\n What can hold water?')
    assert (
        len(ReasonSegDataset(str(reasonseg_root), split='val', query_type='long', test_mode=True))
        == 1
    )
    train = ReasonSegDataset(str(reasonseg_root), split='train')
    assert len(train) == 1 and '<SEG>' in train.get_data_info(0)['answer']  # one per image
    assert len(ReasonSegDataset(str(reasonseg_root), split='train|val')) == 3
    with pytest.raises(FileNotFoundError, match='nosuch'):
        ReasonSegDataset(str(reasonseg_root), split='nosuch')
    with pytest.raises(ValueError, match='query_type'):
        ReasonSegDataset(str(reasonseg_root), query_type='medium')


def test_test_tool_on_a_reasonseg_folder(reasonseg_root, tmp_path, tiny_cfg):
    metrics, _ = evaluate_with_test_tool(
        tmp_path,
        tiny_cfg,
        "pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadReasonSegAnnotation'),\n"
        "            dict(type='SAMPreprocess', img_size=64),\n"
        "            dict(type='PackLISAInputs')]\n"
        'test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(\n'
        f"    _delete_=True, type='ReasonSegDataset', data_root='{reasonseg_root}',\n"
        "    split='val', test_mode=True, pipeline=pipeline))\n",
    )
    assert {'gIoU', 'cIoU', 'short/gIoU', 'short/cIoU', 'long/gIoU', 'long/cIoU'} <= set(metrics)


def _add_bad_samples(root):
    val = root / 'val'
    write_sample(val, 'broken', [dict(label='target', points=rect(1, 1, 3, 3))], ['x'], False)
    (val / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 not really a jpeg')  # corrupt image
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(val / 'nojson.jpg')  # no annotation
    write_sample(val, 'badjson', [], ['x'], False)
    (val / 'badjson.json').write_text('{"text": ["x"], "shapes": [')  # JSON syntax error


def test_skip_mode_counts_and_logs_bad_annotations(reasonseg_root):
    _add_bad_samples(reasonseg_root)
    with pytest.raises(ValueError, match='badjson.json: invalid JSON'):
        ReasonSegDataset(str(reasonseg_root), split='val', test_mode=True)
    ds = ReasonSegDataset(str(reasonseg_root), split='val', test_mode=True, on_error='skip')
    assert len(ds) == 3  # img_1, img_2 and broken (its image fails later, in the pipeline)
    assert sorted(p.rsplit('/', 1)[1] for p, _ in ds.skipped) == ['badjson.json', 'nojson.json']


def test_check_dataset_tool_lists_every_bad_sample(reasonseg_root, tmp_path):
    _add_bad_samples(reasonseg_root)
    config = tmp_path / 'check.py'
    config.write_text(
        f"_base_ = ['{DEMO}']\n"
        "val_dataloader = dict(dataset=dict(_delete_=True, type='ReasonSegDataset',\n"
        f"    data_root='{reasonseg_root}', split='val', test_mode=True, pipeline=[\n"
        "    dict(type='LoadImageFromFile'), dict(type='LoadReasonSegAnnotation')]))\n"
    )
    proc = run_tool('misc/check_dataset.py', str(config), '--split', 'val')
    assert proc.returncode == 1, output(proc)
    assert '3 samples checked, 3 bad' in proc.stdout
    assert 'badjson.json' in proc.stdout and 'invalid JSON' in proc.stdout
    assert 'nojson.json' in proc.stdout and 'not found' in proc.stdout
    assert 'broken.jpg' in proc.stdout and 'cannot be decoded' in proc.stdout
    good = run_tool(
        'misc/check_dataset.py',
        DEMO,
        '--split',
        'val',
        '--cfg-options',
        'val_dataloader.dataset.num_samples=4',
    )
    assert good.returncode == 0 and '4 samples checked, 0 bad' in good.stdout, output(good)


# ---------------------------------------------------------------------------------------------
# LISA's explanatory answers and num_classes_per_sample


@pytest.fixture()
def explained_root(tmp_path):
    root = tmp_path / 'ReasonSeg'
    target = [dict(label='target', points=rect(2, 2, 9, 9))]
    write_sample(root / 'train', 'img_a', target, ['Cup', 'What holds tea?', 'mug'], False)
    write_sample(root / 'train', 'img_b', target, ['plate', 'dish'], False)
    (root / 'explanatory').mkdir()
    items = [dict(image='img_a.jpg', query='Cup', outputs='The cup holds tea.')]
    (root / 'explanatory' / 'train.json').write_text(json.dumps(items))
    return root


def masks_of(ds, idx):
    info = LoadImageFromFile()(ds.get_data_info(idx))
    return LoadReasonSegAnnotation()(info)['gt_masks']


EXPLANATION = ' The cup holds tea.'


def test_explanatory_answers_follow_lisa(explained_root):
    # probability 1: explanation-only answers (no <SEG>, no mask) for the explained image
    ds = ReasonSegDataset(str(explained_root), explanatory=1.0, num_classes_per_sample=3)
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert [i['answer_type'] for i in infos] == ['explanation', 'seg']
    turns = infos[0]['conversations']  # one choice per draw, for all its queries
    assert sorted(strip_image_token(t['question']) for t in turns) == [
        'Cup',
        'What holds tea?',
        'mug',
    ]
    assert all(t['answer'] == EXPLANATION.strip() for t in turns)
    assert masks_of(ds, 0).shape == (0, 20, 24) and masks_of(ds, 1).shape == (2, 20, 24)
    # probability 0: the plain answer, or "<answer> <explanation>" after the query and an
    # explanatory question, with equal chance
    seen = set()
    for seed in range(8):
        ds = ReasonSegDataset(str(explained_root), explanatory=0.0, seed=seed, serialize_data=False)
        for info in (ds.get_data_info(i) for i in range(1)):
            seen.add(info['answer_type'])
            if info['answer_type'] == 'seg+explanation':
                query = info['question'][len('<image>\n') :]
                assert any(query.endswith(' ' + q) for q in EXPLANATORY_QUESTION_LIST)
                assert query.split(' ')[0] in ('Cup', 'What', 'mug')  # the query as written
                assert info['answer'].endswith(EXPLANATION)
                assert info['answer'][: -len(EXPLANATION)] in ANSWER_LIST
            else:
                assert info['answer'] in ANSWER_LIST
            assert info['num_masks'] == 1
    assert seen == {'seg', 'seg+explanation'}
    # off by default, and evaluation never uses explanations
    plain = ReasonSegDataset(str(explained_root))
    assert {plain.get_data_info(i)['answer_type'] for i in range(2)} == {'seg'}
    val = ReasonSegDataset(str(explained_root), explanatory=1.0, test_mode=True)
    assert val.get_data_info(0)['answer'] == '<SEG>.'
    with pytest.raises(FileNotFoundError, match='missing.json'):
        ReasonSegDataset(str(explained_root), explanatory=0.1, explanatory_file='missing.json')


def _queries(info):
    """The query of each turn of a short-query sample (lowercased, as LISA's templates)."""
    texts = ('cup', 'what holds tea?', 'mug', 'plate', 'dish')
    found = [[t for t in texts if t in turn['question'].lower()] for turn in info['conversations']]
    assert all(len(f) == 1 for f in found), found
    return tuple(f[0] for f in found)


def test_queries_are_drawn_as_lisa(explained_root):
    """LISA: num_classes_per_sample of an image's sentences without replacement, or all of
    them (in file order) when it has fewer; every query gets the image's mask."""
    ds = ReasonSegDataset(str(explained_root), num_classes_per_sample=2, serialize_data=False)
    assert len(ds) == 2  # one sample per image
    drawn = set()
    for draw in range(12):  # as a mix's draws 0..11 would read it
        with mixed_draw(0, draw):
            queries = _queries(ds.get_data_info(0))  # img_a: 2 of its 3 queries
        assert len(queries) == len(set(queries)) == 2
        drawn.add(queries)
    assert len(drawn) > 2  # different pairs and orders across draws
    three = ReasonSegDataset(str(explained_root), num_classes_per_sample=3, serialize_data=False)
    assert _queries(three.get_data_info(1)) == ('plate', 'dish')  # fewer than 3: all, in order
    masks = masks_of(three, 0)
    assert masks.shape == (3, 20, 24)
    np.testing.assert_array_equal(masks[0], masks[2])  # every query of an image: its mask
    one = ReasonSegDataset(str(explained_root), num_classes_per_sample=1, serialize_data=False)
    assert len(_queries(one.get_data_info(0))) == 1


def _epoch(root, epoch, samples=12):
    """The draws of one epoch of ReasonSeg in a MixedDataset with FreshDrawSampler."""
    mix = MixedDataset(
        [
            dict(
                type='ReasonSegDataset',
                data_root=str(root),
                num_classes_per_sample=2,
                serialize_data=False,  # skips mmengine's gc.collect (0.7 s per build)
            )
        ],
        num_samples=samples,
        seed=3,
    )
    sampler = FreshDrawSampler(mix, shuffle=True, seed=5)
    sampler.set_epoch(epoch)
    return [
        (mix.get_data_info(i)['img_path'].rsplit('/', 1)[1], mix.get_data_info(i)['conversations'])
        for i in sampler
    ]


def test_draws_change_every_epoch_and_repeat_on_resume(explained_root):
    first, second = _epoch(explained_root, 0), _epoch(explained_root, 1)
    assert first != second  # new images, queries and templates in the next epoch
    assert _epoch(explained_root, 1) == second  # a resumed run at epoch 1: the same draws
    visits = [
        _queries(dict(conversations=c))
        for e in range(3)
        for n, c in _epoch(explained_root, e)
        if n == 'img_a.jpg'
    ]
    assert len(visits) > 3 and len(set(visits)) > 1  # fresh queries of an image per visit
    assert {n for e in range(3) for n, _ in _epoch(explained_root, e)} == {'img_a.jpg', 'img_b.jpg'}


def test_skip_mode_replaces_samples_that_fail_in_training(tmp_path):
    """An undecodable image is skipped at read time in training (on_error='skip'): the
    sample is counted and mmengine fetches another; evaluation still raises."""
    folder = tmp_path / 'train'
    write_sample(folder, 'good', [dict(label='t', points=rect(2, 2, 8, 8))], ['a cup'], False)
    write_sample(folder, 'broken', [dict(label='t', points=rect(2, 2, 8, 8))], ['a cup'], False)
    (folder / 'broken.jpg').write_bytes(b'not an image')
    pipeline = [LoadImageFromFile(), LoadReasonSegAnnotation()]
    kwargs = dict(data_root=str(tmp_path), split='train', pipeline=pipeline)
    infos = [ReasonSegDataset(**kwargs).get_data_info(i)['img_path'] for i in range(2)]
    broken = next(i for i, path in enumerate(infos) if 'broken' in path)
    with pytest.raises(ValueError, match='broken.jpg'):
        ReasonSegDataset(**kwargs).prepare_data(broken)
    skip = ReasonSegDataset(on_error='skip', **kwargs)
    assert skip.prepare_data(broken) is None and skip.runtime_skips == 1
    assert skip[broken]['img_path'].endswith('good.jpg')  # replaced by another sample
