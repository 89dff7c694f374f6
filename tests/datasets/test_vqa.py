"""LLaVA-Instruct VQA: text-only samples (no masks), <image> placement, bad input."""

import json

import pytest
from data_writers import llava_item, write_image, write_llava
from processing import process, word_processor

from lisakit.datasets import VQADataset
from lisakit.datasets.transforms import (
    LoadImageFromFile,
    LoadMaskAnnotations,
)

WORD_TOK = dict(type='WordTokenizer', extra_words=['what is shown here a grey square answer 0 1'])


def test_items_become_text_only_conversations(tmp_path):
    write_llava(tmp_path, n=3, turns=2)
    ds = VQADataset(data_root=str(tmp_path))
    assert len(ds) == 3
    info = ds.get_data_info(1)
    assert info['img_path'] == str(tmp_path / 'coco' / 'train2017' / '000000000001.jpg')
    assert info['query_type'] == 'vqa' and info['mask_anns'] == []
    # LISA moves <image> to the front of the first question
    assert info['conversations'] == [
        dict(question='<image>\nWhat is shown here 0?', answer='A grey square, answer 0.'),
        dict(question='What is shown here 1?', answer='A grey square, answer 1.'),
    ]
    assert info['ann_location'].endswith('llava_instruct_150k.json[1] (id item1)')


def test_pipeline_gives_empty_masks_and_answer_labels(tmp_path):
    write_llava(tmp_path, n=1, turns=2, size=(30, 50))
    pipeline = [LoadImageFromFile(), LoadMaskAnnotations()]
    # SAM preprocessing is not needed to check the text and masks
    results = VQADataset(data_root=str(tmp_path)).get_data_info(0)
    for t in pipeline:
        results = t(results)
    assert results['gt_masks'].shape == (0, 30, 50)
    proc = word_processor(WORD_TOK, max_length=128)  # LISA's per-query layout
    results = process(proc, results)
    tok = proc.tokenizer
    assert len(results['input_ids']) == 1  # a dialogue (query_type 'vqa') is one sequence
    ids, labels = results['input_ids'][0], results['labels'][0]
    supervised = tok.convert_ids_to_tokens(ids[labels != -100])
    assert ' '.join(supervised) == 'a grey square , answer 0 . </s> a grey square , answer 1 . </s>'
    assert '<SEG>' not in tok.convert_ids_to_tokens(ids)


def write_items(tmp_path, items):
    write_image(tmp_path / 'coco' / 'train2017' / 'a.jpg')
    ann = tmp_path / 'llava.json'
    ann.write_text(json.dumps(items))
    return ann


def bad_item(kind):
    item = llava_item(0, 'a.jpg')
    if kind == 'missing':
        del item['image']
    elif kind == 'order':
        item['conversations'][0]['from'] = 'gpt'
    elif kind == 'odd':
        item['conversations'] = item['conversations'][:3]
    elif kind == 'seg':
        item['conversations'][1]['value'] = 'It is <SEG>.'
    return item


@pytest.mark.parametrize(
    'kind, message',
    [
        ('missing', r"missing keys \['image'\]"),
        ('order', "message 1 must be from 'human', got 'gpt'"),
        ('odd', '3 messages; expected human / gpt pairs'),
        ('seg', 'an answer contains <SEG>'),
    ],
)
def test_bad_items_name_file_and_index(tmp_path, kind, message):
    items = [llava_item(0, 'a.jpg'), bad_item(kind), llava_item(2, 'a.jpg')]
    ann = write_items(tmp_path, items)
    with pytest.raises(ValueError, match=rf'llava.json\[1\] \(id item0\): {message}'):
        VQADataset(ann_file=str(ann))
    ds = VQADataset(ann_file=str(ann), on_error='skip')
    assert len(ds) == 2 and len(ds.skipped) == 1 and 'llava.json[1]' in ds.skipped[0][0]


def test_unreadable_files_always_raise(tmp_path):
    ann = tmp_path / 'llava.json'
    ann.write_text('[{"image": "a.jpg",\n "conversations": [}]')
    for on_error in ('raise', 'skip'):
        with pytest.raises(ValueError, match='llava.json: invalid JSON at line 2 column'):
            VQADataset(ann_file=str(ann), on_error=on_error)
    ann.write_bytes(json.dumps([dict(image='caf\u00e9.jpg')], ensure_ascii=False).encode('cp1252'))
    with pytest.raises(ValueError, match=r'llava.json: not UTF-8 text \(byte 15'):
        VQADataset(ann_file=str(ann))
    ann.write_text('{"image": "a.jpg"}')
    with pytest.raises(ValueError, match='expected a JSON list'):
        VQADataset(ann_file=str(ann))
    with pytest.raises(FileNotFoundError, match='nope.json'):
        VQADataset(ann_file=str(tmp_path / 'nope.json'))
    with pytest.raises(ValueError, match='on_error'):
        VQADataset(ann_file=str(ann), on_error='ignore')


def test_missing_image_fails_in_the_pipeline_or_is_skipped(tmp_path):
    items = [llava_item(0, 'gone.jpg'), llava_item(1, 'a.jpg')]
    ann = write_items(tmp_path, items)
    prefix = dict(img_path=str(tmp_path / 'coco' / 'train2017'))
    pipeline = [LoadImageFromFile(), LoadMaskAnnotations()]
    with pytest.raises(FileNotFoundError, match=r'llava.json\[0\] \(id item0\): .*gone.jpg'):
        VQADataset(ann_file=str(ann), data_prefix=prefix, pipeline=pipeline)[0]
    ds = VQADataset(ann_file=str(ann), data_prefix=prefix, pipeline=pipeline, on_error='skip')
    out = ds[0]
    assert ds.runtime_skips >= 1 and out['img_path'].endswith('a.jpg')


def test_long_dialogue_is_cut_hard_as_lisa(tmp_path):
    proc = word_processor(WORD_TOK, max_length=16, layout='multi_turn')
    turns = [
        dict(question='<image>\nWhat is shown here?', answer=' '.join(['square'] * 40)),
        dict(question='What is here?', answer='A grey square.'),
    ]
    out = process(proc, dict(conversations=turns, gt_masks=None, sample_idx=0))
    words = proc.tokenizer.convert_ids_to_tokens(out['input_ids'][0])
    # <s> user : <image> what is shown here ? assistant : = 11 prompt tokens, 5 answer tokens
    assert len(words) == 16
    assert words[3:9] == ['<image>', 'what', 'is', 'shown', 'here', '?']
    assert words[11:] == ['square'] * 5
    assert int((out['labels'][0] != -100).sum()) == 5
