"""Users' JSON-lines data: masks pixel by pixel (polygons, RLE, PNG), multi-turn
conversations and their tokenization, num_classes_per_sample, and every bad input."""

import numpy as np
import pytest
import torch
from data_writers import write_image, write_jsonl
from PIL import Image
from processing import process, word_processor
from pycocotools import mask as mask_utils

from lisakit.datasets import JSONLDataset
from lisakit.datasets.templates import ANSWER_LIST, SHORT_QUESTION_LIST
from lisakit.datasets.transforms import LoadImageFromFile, LoadMaskAnnotations

H, W = 20, 24
WORD_TOK = dict(type='WordTokenizer', extra_words=['where are the cat dog what colour grey'])


def rect(x0, y0, x1, y1):
    """COCO polygon of the pixel block rows y0..y1-1, columns x0..x1-1."""
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def rle_of(mask):
    rle = mask_utils.encode(np.asfortranarray(mask))
    return dict(size=list(rle['size']), counts=rle['counts'].decode('ascii'))


@pytest.fixture()
def root(tmp_path):
    write_image(tmp_path / 'images' / 'a.jpg', H, W)
    write_image(tmp_path / 'images' / 'b.png', H, W)
    label = np.zeros((H, W), np.uint8)
    label[2:6, 3:9] = 1
    label[4:5, 4:6] = 255  # an ignore region inside the object
    (tmp_path / 'masks').mkdir()
    Image.fromarray(label).save(tmp_path / 'masks' / 'b_0.png')
    return tmp_path


def good_lines():
    rle_mask = np.zeros((H, W), np.uint8)
    rle_mask[10:15, 0:4] = 1
    line_a = dict(
        image='a.jpg',
        conversations=[
            dict(
                question='Where are the cat and the dog?',
                answer='The cat <SEG> and the dog <SEG>.',
                masks=[
                    # two parts, flat and as [x, y] points
                    dict(
                        polygons=[
                            rect(1, 1, 5, 4),
                            [[10, 2], [14, 2], [14, 6], [10, 6]],
                            rect(3, 2, 7, 5),  # overlaps the first part: union, not sum
                        ]
                    ),
                    dict(rle=rle_of(rle_mask)),
                ],
            ),
            dict(query='The Sofa', masks=[dict(rle={'size': [H, W], 'counts': [H * W - 3, 3]})]),
            dict(question='What colour is it?', answer='Grey.'),
        ],
    )
    line_b = dict(
        image='b.png',
        conversations=[
            dict(question='<image>\nSegment it.', answer='<SEG>.', masks=[dict(png='b_0.png')])
        ],
    )
    return [line_a, '', line_b]  # a blank line is allowed


def build(root, lines, **kwargs):
    write_jsonl(root / 'train.jsonl', lines)
    kwargs.setdefault('data_prefix', dict(img_path='images', mask_path='masks'))
    return JSONLDataset(ann_file='train.jsonl', data_root=str(root), **kwargs)


def load(ds, idx, **mask_kwargs):
    info = LoadImageFromFile()(ds.get_data_info(idx))
    return LoadMaskAnnotations(**mask_kwargs)(info)


def test_masks_and_turns_pixel_by_pixel(root):
    ds = build(root, good_lines())
    assert len(ds) == 2
    out = load(ds, 0)
    expected = np.zeros((3, H, W), np.uint8)
    expected[0, 1:4, 1:5] = 1
    expected[0, 2:6, 10:14] = 1
    expected[0, 2:5, 3:7] = 1
    expected[1, 10:15, 0:4] = 1
    expected[2, H - 3 :, W - 1] = 1  # RLE runs are column-major: the last 3 pixels
    assert out['gt_masks'].dtype == np.uint8 and out['gt_masks'].shape == (3, H, W)
    np.testing.assert_array_equal(out['gt_masks'], expected)
    turns = out['conversations']
    assert turns[0] == dict(
        question='<image>\nWhere are the cat and the dog?',
        answer='The cat <SEG> and the dog <SEG>.',
    )
    templates = [q.replace('{class_name}', 'the sofa') for q in SHORT_QUESTION_LIST]
    assert turns[1]['question'] in [t.replace('<image>\n', '') for t in templates]
    assert turns[1]['answer'] in ANSWER_LIST
    assert turns[2] == dict(question='What colour is it?', answer='Grey.')
    assert out['ann_location'].endswith('train.jsonl:1')
    # the PNG: 0 / 1, and 255 kept as ignore only when asked for
    png = load(ds, 1, png_ignore_value=255)['gt_masks'][0]
    want = np.zeros((H, W), np.uint8)
    want[2:6, 3:9] = 1
    want[4:5, 4:6] = 255
    np.testing.assert_array_equal(png, want)
    np.testing.assert_array_equal(load(ds, 1)['gt_masks'][0], (want > 0).astype(np.uint8))
    assert ds.get_data_info(1)['ann_location'].endswith('train.jsonl:3')


def test_multi_turn_tokenization_supervises_answers_only(root):
    ds = build(root, good_lines())
    proc = word_processor(WORD_TOK, max_length=256, layout='multi_turn')
    out = process(proc, load(ds, 0))
    tok = proc.tokenizer
    assert len(out['input_ids']) == 1
    ids, labels = out['input_ids'][0], out['labels'][0]
    words = tok.convert_ids_to_tokens(ids.tolist())
    assert words[:3] == ['<s>', 'user', ':'] and words.count('<image>') == 1
    assert words.count('user') == 3 and words.count('assistant') == 3
    assert words.count('</s>') == 3
    supervised = tok.convert_ids_to_tokens(ids[labels != -100].tolist())
    text = ' '.join(supervised)
    assert text.startswith('the cat <SEG> and the dog <SEG> . </s>')
    assert text.endswith('grey . </s>')
    assert supervised.count('<SEG>') == 3 and 'user' not in supervised
    # too long for all turns: a hard cut (LISA's), the masks of cut <SEG> tokens go
    short = process(word_processor(WORD_TOK, max_length=30, layout='multi_turn'), load(ds, 0))
    seg = tok.convert_tokens_to_ids('<SEG>')
    kept = int((short['input_ids'][0] == seg).sum())
    assert len(short['input_ids'][0]) == 30 and kept < 3
    sample = short['data_sample']
    assert len(sample.gt_masks) == kept and sample.truncated_masks == 3 - kept
    # LISA's layout: one sequence per turn, each with the image
    per_query = process(word_processor(WORD_TOK), load(ds, 0))
    assert len(per_query['input_ids']) == 3
    assert all(
        tok.convert_ids_to_tokens(x.tolist())[3] == '<image>' for x in per_query['input_ids']
    )


def test_later_question_must_not_hold_image_token(root):
    lines = [
        dict(
            image='a.jpg',
            conversations=[
                dict(question='q1', answer='a1'),
                dict(question='<image> q2', answer='a2'),
            ],
        )
    ]
    with pytest.raises(ValueError, match=r'train.jsonl:1: turn 2: only the first question'):
        build(root, lines)


def test_num_classes_per_sample_splits_long_conversations(root):
    turn = dict(query='thing', masks=[dict(polygons=[rect(0, 0, 3, 3)])])
    ds = build(root, [dict(image='a.jpg', conversations=[turn] * 5)], num_classes_per_sample=2)
    assert [len(ds.get_data_info(i)['conversations']) for i in range(len(ds))] == [2, 2, 1]
    for i in range(3):
        info = ds.get_data_info(i)
        assert info['conversations'][0]['question'].startswith('<image>\n')
        assert all('<image>' not in t['question'] for t in info['conversations'][1:])
        assert len(info['mask_anns']) == len(info['conversations'])
    # seeded: the same seed gives the same templates, other seeds other ones
    lines = [dict(image='a.jpg', conversations=[turn] * 5)]
    again = build(root, lines, num_classes_per_sample=2)
    assert again.get_data_info(0)['conversations'] == ds.get_data_info(0)['conversations']
    firsts = {
        build(root, lines, seed=s).get_data_info(0)['conversations'][0]['question']
        for s in range(6)
    }
    assert len(firsts) > 1


def _truncated_rle():
    mask = np.zeros((H, W), np.uint8)
    mask[10:15, 5:9] = 1
    rle = rle_of(mask)
    return dict(rle, counts=rle['counts'][:-2])  # the last two runs cut off


TRUNCATED_RLE = _truncated_rle()
SHORT_RUNS_RLE = dict(size=[H, W], counts=[H * W - 10, 7])

BAD_LINES = [
    ('{"image": "a.jpg", "conversations": [', r'invalid JSON \(Expecting value at column 38\)'),
    ({'conversations': []}, r"missing keys \['image'\]"),
    (
        dict(
            image='a.jpg',
            conversations=[
                dict(question='q', answer='<SEG> <SEG>', masks=[dict(polygons=[rect(0, 0, 2, 2)])])
            ],
        ),
        'the answer has 2 <SEG> but there are 1 masks',
    ),
    (
        dict(
            image='a.jpg',
            conversations=[dict(question='q', answer='<SEG>', masks=[dict(png='nope.png')])],
        ),
        'mask PNG .*nope.png.* not found',
    ),
    (
        dict(
            image='a.jpg',
            conversations=[
                dict(question='q', answer='<SEG>', masks=[dict(polygons=[[1, 1, 5, 5]])])
            ],
        ),
        'polygon 1 has 2 point\\(s\\); a polygon needs at least 3',
    ),
    (
        dict(
            image='a.jpg',
            conversations=[dict(question='q', answer='<SEG>', masks=[dict(box=[1, 2, 3, 4])])],
        ),
        "exactly one of \\('polygons', 'rle', 'png'\\)",
    ),
    (  # pycocotools would decode a truncated RLE into garbage
        dict(image='a.jpg', conversations=[dict(query='x', masks=[dict(rle=TRUNCATED_RLE)])]),
        r'turn 1: mask 1: RLE runs add up to \d+ pixels but its size \[20, 24\] has 480; '
        'the counts are truncated',
    ),
    (
        dict(image='a.jpg', conversations=[dict(query='x', masks=[dict(rle=SHORT_RUNS_RLE)])]),
        r'mask 1: RLE runs add up to 477 pixels',
    ),
]


@pytest.mark.parametrize('line, message', BAD_LINES)
def test_bad_lines_name_file_and_line(root, line, message):
    good = good_lines()[0]
    with pytest.raises(ValueError, match=rf'train.jsonl:2: .*{message}'):
        build(root, [good, line])
    ds = build(root, [good, line, good], on_error='skip')
    assert len(ds) == 2 and len(ds.skipped) == 1
    location, reason = ds.skipped[0]
    assert location.endswith('train.jsonl:2') and 'train.jsonl:2' in reason


def test_non_utf8_line(root):
    path = root / 'train.jsonl'
    write_jsonl(path, [good_lines()[0]])
    with open(path, 'ab') as f:
        f.write('{"image": "caf\u00e9.jpg", "conversations": []}\n'.encode('cp1252'))
    with pytest.raises(ValueError, match='train.jsonl:2: not UTF-8 text'):
        JSONLDataset(ann_file=str(path))
    ds = JSONLDataset(ann_file=str(path), on_error='skip')
    assert len(ds) == 1 and 'not UTF-8' in ds.skipped[0][1]


PIPELINE_ERRORS = [
    (dict(polygons=[rect(30, 2, 40, 8)]), 'outside the 24x20 image'),
    (dict(polygons=[[2, 2, 2.4, 2, 2.2, 2.3]]), 'mask 1 is empty'),
    (dict(rle=dict(size=[5, 5], counts=[25])), r'RLE size \[5, 5\] differs from the image size'),
]


@pytest.mark.parametrize('mask, message', PIPELINE_ERRORS)
def test_pipeline_errors_name_file_and_line(root, mask, message):
    line = dict(image='a.jpg', conversations=[dict(query='x', masks=[mask])])
    pipeline = [LoadImageFromFile(), LoadMaskAnnotations()]
    ds = build(root, [line], pipeline=pipeline)
    with pytest.raises(ValueError, match=rf'train.jsonl:1: .*{message}'):
        ds[0]


def test_skip_mode_replaces_a_sample_failing_in_the_pipeline(root):
    bad = dict(
        image='missing.jpg',
        conversations=[dict(query='x', masks=[dict(polygons=[rect(0, 0, 4, 4)])])],
    )
    good = dict(
        image='a.jpg', conversations=[dict(query='y', masks=[dict(polygons=[rect(0, 0, 4, 4)])])]
    )
    pipeline = [LoadImageFromFile(), LoadMaskAnnotations()]
    ds = build(root, [bad, good], pipeline=pipeline, on_error='skip')
    out = ds[0]  # the missing image is logged, counted and replaced by another sample
    assert ds.runtime_skips >= 1 and out['img_path'].endswith('a.jpg')
    assert int(torch.as_tensor(out['gt_masks']).sum()) == 16
    strict = build(root, [bad, good], pipeline=pipeline)
    with pytest.raises(FileNotFoundError, match=r'train.jsonl:1: .*missing.jpg'):
        strict[0]


def multi_lines():
    two = [dict(polygons=[rect(10, 0, 14, 4)]), dict(polygons=[rect(0, 0, 4, 4)])]
    return [
        dict(image='a.jpg', conversations=[dict(query='the boxes', masks=two)]),
        dict(image='a.jpg', conversations=[dict(query='the purple star', no_target=True)]),
    ]


def test_multi_target_query_lists_one_seg_per_mask_in_order(root):
    ds = build(root, multi_lines())
    out = load(ds, 0)
    assert out['answer'].count('<SEG>') == 2 and ', <SEG>' not in out['answer']
    assert ' and ' in out['answer']
    assert out['gt_masks'].shape == (2, H, W)
    assert out['gt_masks'][0][0:4, 10:14].all() and out['gt_masks'][1][0:4, 0:4].all()
    assert (out['num_targets'], out['no_target']) == (2, False)


def test_no_target_query_rejects_in_training_and_keeps_a_zero_mask_in_test(root):
    ds = build(root, multi_lines(), reject_answers=['Nothing like that here.'])
    out = load(ds, 1)
    assert out['answer'] == 'Nothing like that here.' and out['gt_masks'].shape == (0, H, W)
    assert (out['num_targets'], out['no_target']) == (0, True)
    test = load(build(root, multi_lines(), test_mode=True, answers=['<SEG>.']), 1)
    assert test['answer'] == '<SEG>.' and test['gt_masks'].shape == (1, H, W)
    assert not test['gt_masks'].any() and test['no_target'] is True


def test_bad_multi_and_no_target_turns(root):
    bad = [dict(image='a.jpg', conversations=[dict(query='x')])]
    with pytest.raises(ValueError, match='at least 1 mask, or "no_target": true'):
        build(root, bad)
    mask = dict(polygons=[rect(0, 0, 3, 3)])
    bad = [dict(image='a.jpg', conversations=[dict(query='x', no_target=True, masks=[mask])])]
    with pytest.raises(ValueError, match='a "no_target" turn has no masks'):
        build(root, bad)
    with pytest.raises(ValueError, match='multi_answers'):
        build(root, multi_lines(), multi_answers=['They are <SEG>.'])
