"""ReasonSeg: LISA's rasterization pixel by pixel, the dataset, and tools/test.py on a
generated ReasonSeg-format folder."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from tool_runner import DEMO, output, run_tool

from lisakit.datasets import ReasonSegDataset, load_reasonseg_annotation
from lisakit.registry import MODELS


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
    assert len(train) == 3 and all('<SEG>' in train.get_data_info(i)['answer'] for i in range(3))
    assert len(ReasonSegDataset(str(reasonseg_root), split='train|val')) == 6
    with pytest.raises(FileNotFoundError, match='nosuch'):
        ReasonSegDataset(str(reasonseg_root), split='nosuch')
    with pytest.raises(ValueError, match='query_type'):
        ReasonSegDataset(str(reasonseg_root), query_type='medium')


def test_test_tool_on_a_reasonseg_folder(reasonseg_root, tmp_path, tiny_cfg):
    ckpt = tmp_path / 'model.pth'
    torch.manual_seed(0)
    torch.save({'state_dict': MODELS.build(tiny_cfg.model).state_dict()}, ckpt)
    config = tmp_path / 'reasonseg_eval.py'
    config.write_text(
        f"_base_ = ['{DEMO}']\n"
        "pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadReasonSegAnnotation'),\n"
        "            dict(type='SAMPreprocess', img_size=64),\n"
        "            dict(type='CLIPPreprocess', size=32),\n"
        "            dict(type='TokenizeConversation', tokenizer=dict(type='WordTokenizer'),\n"
        "                 template='plain', max_length=64), dict(type='PackLISAInputs')]\n"
        'test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(\n'
        f"    _delete_=True, type='ReasonSegDataset', data_root='{reasonseg_root}',\n"
        "    split='val', test_mode=True, pipeline=pipeline))\n"
    )
    out = tmp_path / 'metrics.json'
    proc = run_tool(
        'test.py', str(config), str(ckpt), '--work-dir', str(tmp_path / 'wd'), '--out', str(out)
    )
    assert proc.returncode == 0, output(proc)
    metrics = json.loads(out.read_text())
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
