"""lisakit's token ids, labels and CLIP pixels equal what LISA's own code produces, through
the backbone's processor (``LlavaProcessor``, as the data preprocessor runs it).

The expected values in ``tests/data/lisa_fixtures`` were recorded by
``tools/misc/record_lisa_fixtures.py`` with transformers 4.31 (LISA's pin) and LISA's
rendering / ``tokenizer_image_token`` / ``collate_fn`` code, on a small LLaMA-like
sentencepiece model; these tests run under the project's transformers 5.
"""

import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from lisakit.datasets.transforms import PackLISAInputs
from lisakit.models.data_preprocessors import LISADataPreprocessor
from lisakit.models.processors import LlavaProcessor
from lisakit.tokenizers import (
    ConversationEncoder,
    HFTokenizer,
    SlowLlamaEncoder,
    add_im_start_end_tokens,
    is_sentencepiece_llama,
)
from lisakit.utils.constants import SEG_TOKEN

FIXTURES = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'data', 'lisa_fixtures')
LISA_SEG, IMAGE_INDEX, IGNORE = '[SEG]', -200, -100
with open(osp.join(FIXTURES, 'conversations.json'), encoding='utf-8') as _f:
    RECORDED = json.load(_f)
CASES = {c['name']: c for c in RECORDED['cases']}


def lisa_tokenizer(use_mm_start_end: bool):
    """The tokenizer of a LISA checkpoint: LLaMA + ``[SEG]`` (+ ``<im_start>/<im_end>``)."""
    tok = HFTokenizer(osp.join(FIXTURES, 'tokenizer'))
    tok.add_tokens([LISA_SEG])
    if use_mm_start_end:
        add_im_start_end_tokens(tok)
    return tok


#: LISA's CLIP ViT-L/14 at 224 px: 256 image features.
LISA_FEATURES, LISA_CLIP_SIZE = 256, 224
IMAGE = np.zeros((LISA_CLIP_SIZE, LISA_CLIP_SIZE, 3), np.uint8)


def sample_text(case: dict) -> dict:
    """The case as a lisakit dataset emits it (``<SEG>`` in answers, ``query_type``)."""
    turns = [dict(question=q, answer=a.replace(LISA_SEG, SEG_TOKEN)) for q, a in case['turns']]
    for k, turn in enumerate(turns[1:], 1):  # datasets keep <image> in the first turn only
        turn['question'] = turn['question'].replace('<image>\n', '')
        assert '<image>' not in turns[k]['question']
    query_type = 'vqa' if case['kind'] == 'dialogue' else 'short'
    return dict(conversations=turns, query_type=query_type, sample_idx=0)


def neutral(results: dict) -> dict:
    """The sample as PackLISAInputs hands it to the data preprocessor."""
    return PackLISAInputs()(dict(results, img=IMAGE, sam_image=torch.zeros(3, 4, 4)))


def expected_lisakit_form(seq: dict, use_mm: bool, image_id: int) -> tuple[list, list]:
    """LISA's ids with ``<im_start>, -200, <im_end>`` (or -200) as lisakit's one ``<image>``."""
    ids, labels = list(seq['input_ids']), list(seq['labels'] or [IGNORE] * len(seq['input_ids']))
    pos = ids.index(IMAGE_INDEX)
    if use_mm:
        del ids[pos + 1], labels[pos + 1], ids[pos - 1], labels[pos - 1]
        pos -= 1
    ids[pos] = image_id
    return ids, labels


def processor_for(case: dict, use_sentencepiece=None) -> LlavaProcessor:
    """LISA's processor settings (what LlavaBackbone builds for a LISA-v1 checkpoint)."""
    tok = lisa_tokenizer(case['use_mm_start_end'])
    p = LlavaProcessor(
        tok,
        template='llava_v1',
        max_length=None if case['inference'] else case['model_max_length'],
        num_image_features=LISA_FEATURES,
        image_size=LISA_CLIP_SIZE,
        image_processor=osp.join(FIXTURES, 'clip'),
        layout='per_query',
        seg_token=LISA_SEG,
    )
    if use_sentencepiece is False:
        p.encoder._slow = SlowLlamaEncoder(p.tokenizer, use_sentencepiece=False)
    return p


def run(p: LlavaProcessor, results: dict) -> dict:
    """The processor on the neutral form of ``results``."""
    sample = neutral(results)
    meta = sample['data_samples'].metainfo
    return p(sample['inputs']['img'], meta['conversations'], meta['query_type'], name='case')


def test_fixture_set_covers_the_issue():
    names = set(CASES)
    assert len(names) >= 12 and RECORDED['transformers'] == '4.31.0'
    for k in range(4):
        assert f'short_template_{k}_answer_{k}' in names
    assert {'long_template_0_answer_4', 'long_template_1_answer_3'} <= names
    assert {'val_reasonseg_sentence', 'val_refer_phrase', 'explanatory_seg_and_text'} <= names
    assert {'vqa_dialogue', 'truncated_long_query', 'chat_prompt'} <= names
    assert any(not c['use_mm_start_end'] for c in CASES.values())
    assert len(CASES['truncated_long_query']['sequences'][0]['input_ids']) == 512 - 255


@pytest.mark.parametrize('use_sentencepiece', [None, False], ids=['sentencepiece', 'bpe'])
@pytest.mark.parametrize('name', sorted(CASES))
def test_ids_and_labels_equal_lisa(name, use_sentencepiece):
    case = CASES[name]
    t = processor_for(case, use_sentencepiece)
    assert (
        t.encoder.text_encoding == 'lisa' and t.encoder.use_im_start_end == case['use_mm_start_end']
    )
    assert (t.encoder._slow.sp is None) == (use_sentencepiece is False)
    assert t.tokenizer.convert_tokens_to_ids(LISA_SEG) == case['seg_token_id'] == t.seg_token_id
    results = sample_text(case)
    if case['kind'] == 'chat':  # chat.py: the prompt for generation, an empty answer
        results['conversations'][0]['answer'] = ''
    out = run(t, results)
    assert len(out['input_ids']) == len(case['sequences'])
    for ids, labels, seq in zip(out['input_ids'], out['labels'], case['sequences']):
        exp_ids, exp_labels = expected_lisakit_form(
            seq, case['use_mm_start_end'], t.encoder.image_id
        )
        assert ids.dtype == labels.dtype == torch.long
        assert ids.tolist() == exp_ids
        assert labels.tolist() == exp_labels


def test_seg_and_image_surroundings_are_lisas():
    """The two whitespace facts of the issue: ``ASSISTANT:`` is followed directly by the
    answer and ``[SEG]`` by ``▁.``; ``<im_end>`` directly by the question's first word."""
    case = CASES['short_template_0_answer_0']
    t = processor_for(case)
    ids = run(t, sample_text(case))['input_ids'][0].tolist()
    pieces = t.tokenizer.convert_ids_to_tokens(ids)
    seg = pieces.index(LISA_SEG)
    assert pieces[seg - 2 : seg + 3] == ['▁It', '▁is', LISA_SEG, '▁.', '</s>']
    image = pieces.index('<image>')
    assert pieces[image - 2 : image + 2] == ['▁USER', ':', '<image>', '▁Can']


def test_truncation_drops_the_masks_of_cut_seg_tokens():
    case = CASES['truncated_long_query']
    pre = LISADataPreprocessor(processor=processor_for(case))
    results = sample_text(case)
    results['gt_masks'] = np.ones((1, 4, 4), dtype=np.uint8)
    data = pre(pseudo_collate([neutral(results)]))
    ids = data['inputs']['input_ids']
    assert ids.shape == (1, 512 - 255 - 2)  # <im_start> / <im_end> come back
    (sample,) = data['data_samples']
    assert sample.truncated_masks == 1 and sample.gt_masks.shape == (0, 4, 4)


def test_detects_llama_sentencepiece_tokenizers():
    assert is_sentencepiece_llama(lisa_tokenizer(False))
    t = LlavaProcessor(
        dict(type='WordTokenizer'), template='plain', num_image_features=1, image_size=8
    )
    assert t.encoder.text_encoding == 'tokenizer' and not t.encoder.use_im_start_end


# ---------------------------------------------------------------------------------------------
# CLIP pixels


def test_clip_pixels_equal_transformers_431():
    recorded = np.load(osp.join(FIXTURES, 'clip_pixels.npz'))
    p = processor_for(CASES['short_template_0_answer_0'])
    results = sample_text(CASES['short_template_0_answer_0'])
    n = len([k for k in recorded.files if k.startswith('image_')])
    assert n >= 3
    for k in range(n):
        img = recorded[f'image_{k}']
        sample = PackLISAInputs()(dict(results, img=img, sam_image=torch.zeros(3, 4, 4)))
        out = p(sample['inputs']['img'], sample['data_samples'].conversations)
        out = out['vision']['pixel_values']
        expected = recorded[f'pixels_{k}']
        assert out.shape == expected.shape == (3, 224, 224)
        assert out.dtype == torch.float32
        assert float(np.abs(out.numpy() - expected).max()) <= 1e-6, img.shape


def test_plain_transformers5_encoding_differs_from_lisa():
    """Why the 4.31 emulation exists: transformers 5 on the same string keeps the space
    before ``[SEG]`` (a lone ``▁``) and drops the dummy prefix of ``.``."""
    case = CASES['short_template_0_answer_0']
    lisa = processor_for(case).encoder
    modern = ConversationEncoder(lisa.tokenizer, 'llava_v1', 'tokenizer', use_im_start_end=True)
    turns = [(q, a) for q, a in case['turns']]
    ids, _ = modern.encode(turns)
    expected, _ = expected_lisakit_form(case['sequences'][0], True, lisa.image_id)
    pieces = lisa.tokenizer.convert_ids_to_tokens(ids)
    assert ids != expected
    assert pieces[-5:] == ['▁is', '▁', LISA_SEG, '.', '</s>']
