"""LlavaProcessor: LISA's conversation rendering, tokenization and CLIP pixels (LISA's ids
on a LLaMA tokenizer and its pixels: tests/tokenizers/test_lisa_fidelity.py)."""

import copy

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from lisakit.models.processors import LlavaProcessor
from lisakit.registry import DATASETS, MODELS, PROCESSORS
from lisakit.tokenizers import build_tokenizer

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
WORD_TOK = dict(type='WordTokenizer')
QUESTION = '<image>\nCan you segment the red shape in this image?'
Q_TOKENS = ['<image>', 'can', 'you', 'segment', 'the', 'red', 'shape', 'in', 'this', 'image', '?']
ANSWER = 'Sure, <SEG>.'
A_TOKENS = ['sure', ',', '<SEG>', '.', '</s>']
IMAGE = np.zeros((8, 8, 3), np.uint8)
#: The tiny tokenizer has no image features to speak of: max_length counts text only.
NO_FEATURES = dict(num_image_features=1, image_size=32)


def const_image(h, w, rgb=(100, 150, 200)):
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (h, w, 3)).copy()


def processor(tokenizer=WORD_TOK, **kwargs):
    return LlavaProcessor(tokenizer, **{'template': 'plain', **NO_FEATURES, **kwargs})


def tokenize(template='plain', max_length=512, question=QUESTION, answer=ANSWER):
    p = processor(template=template, max_length=max_length)
    return p.tokenizer, p(IMAGE, [(question, answer)], name='sample 3')


def toks(tok, ids):
    return tok.convert_ids_to_tokens(ids.tolist())


def three_queries(**kwargs):
    p = processor(**kwargs)
    names = ['red shape', 'blue circle', 'green square']
    turns = [
        (('<image>\n' if k == 0 else '') + f'Please segment the {n} in this image.', a)
        for k, (n, a) in enumerate(zip(names, ['It is <SEG>.', 'Sure, <SEG>.', '<SEG>.']))
    ]
    return p, turns


# ---------------------------------------------------------------------------------------------
# Text


def test_plain_template():
    tok, out = tokenize('plain')
    assert isinstance(out['input_ids'], list) and len(out['input_ids']) == 1
    ids, labels = out['input_ids'][0], out['labels'][0]
    assert ids.dtype == torch.long and labels.dtype == torch.long
    # <s> user : {question} assistant : {answer} </s>  ->  1 + 2 + 11 + 2 + 5 = 21 tokens.
    assert ids.shape == labels.shape == (21,)
    t = toks(tok, ids)
    assert t[:2] == ['<s>', 'user']
    assert t[3:14] == Q_TOKENS
    assert t[14] == 'assistant'
    assert t[16:] == A_TOKENS
    # Labels: -100 for every prompt token, the ids for the answer and the final EOS.
    assert (labels[:16] == -100).all()
    assert torch.equal(labels[16:], ids[16:])
    assert (labels == tok.convert_tokens_to_ids('<SEG>')).sum() == 1
    assert out['kept_masks'] == [0]


def test_llava_v1_template():
    tok, out = tokenize('llava_v1')
    ids, labels = out['input_ids'][0], out['labels'][0]
    t = toks(tok, ids)
    # 29 system tokens ("a chat between ... questions .") + 'user' + ':' after <s>.
    assert t[:5] == ['<s>', 'a', 'chat', 'between', 'a']
    assert t[28:31] == ['questions', '.', 'user']
    assert t[32:43] == Q_TOKENS
    assert t[43] == 'assistant'
    assert t[45:] == A_TOKENS
    assert (labels[:45] == -100).all()
    assert torch.equal(labels[45:], ids[45:])


def test_generation_prompt_has_no_labels():
    tok, out = tokenize('plain', answer='')
    ids, labels = out['input_ids'][0], out['labels'][0]
    assert toks(tok, ids)[-2:] == ['assistant', ':'] and (labels == -100).all()
    assert out['kept_masks'] == []


def test_per_query_layout_one_sequence_per_query():
    p, turns = three_queries()
    out = p(IMAGE, turns)
    assert len(out['input_ids']) == len(out['labels']) == 3
    for ids, labels in zip(out['input_ids'], out['labels']):
        words = toks(p.tokenizer, ids)
        assert words[:4] == ['<s>', 'user', ':', '<image>']  # every query has its image
        assert int((ids == p.image_token_id).sum()) == 1 and int((ids == p.seg_token_id).sum()) == 1
        assert words[-1] == '</s>' and labels[-1] == p.tokenizer.eos_token_id
    assert 'blue' in toks(p.tokenizer, out['input_ids'][1])
    assert out['kept_masks'] == [0, 1, 2]  # <SEG> order kept


def test_multi_turn_layout_and_dialogues_stay_one_sequence():
    p, turns = three_queries(layout='multi_turn')
    out = p(IMAGE, turns)
    assert len(out['input_ids']) == 1
    words = toks(p.tokenizer, out['input_ids'][0])
    assert words.count('<image>') == 1 and words.count('<SEG>') == 3
    assert words.count('</s>') == 3 and int((out['labels'][0] == 2).sum()) == 3
    p, turns = three_queries()
    assert len(p(IMAGE, turns, query_type='vqa')['input_ids']) == 1  # dialogue_query_types


def test_hard_cut_counts_image_features():
    # max_length counts the expanded image: the sample has 21 tokens with one image
    # token; with 6 image features it needs max_length 26, and 21 cuts it to 16 tokens.
    def run(max_length):
        p = processor(max_length=max_length, num_image_features=6)
        return p, p(IMAGE, [(QUESTION, ANSWER)])

    _, out = run(26)
    assert len(out['input_ids'][0]) == 21 and out['kept_masks'] == [0]
    p, out = run(21)
    assert len(out['input_ids'][0]) == len(out['labels'][0]) == 16
    assert toks(p.tokenizer, out['input_ids'][0])[-2:] == ['assistant', ':']  # a hard cut
    assert out['kept_masks'] == []
    # max_text_length counts the image as one token: 16 is max_length 21 with 6 features
    p = processor(max_text_length=16, num_image_features=6)
    assert (p.cut_length, p.max_length) == (16, 21)
    assert torch.equal(p(IMAGE, [(QUESTION, ANSWER)])['input_ids'][0], out['input_ids'][0])
    with pytest.raises(ValueError, match='max_length=21 and max_text_length=16; keep one'):
        processor(max_length=21, max_text_length=16, num_image_features=6)


def test_cut_seg_is_left_out_of_kept_masks():
    p, turns = three_queries(max_length=12)
    out = p(IMAGE, turns)
    # 12 tokens: <s> user : <image> please segment the <colour> <shape> in this image
    assert [len(x) for x in out['input_ids']] == [12, 12, 12]
    assert out['kept_masks'] == []
    # 17 tokens: "<s> user : <image> please segment the (2 words) in this image . assistant :"
    # is 15, then "it is", "sure ," or "<SEG> ." (only the last answer keeps its <SEG>)
    p, turns = three_queries(max_length=17)
    out = p(IMAGE, turns)
    assert [int((x == p.seg_token_id).sum()) for x in out['input_ids']] == [0, 0, 1]
    assert out['kept_masks'] == [2]


def test_too_small_max_length_raises():
    with pytest.raises(ValueError, match='max_length=100'):
        processor(max_length=100, num_image_features=256)


def test_bad_options_raise():
    with pytest.raises(ValueError, match='layout'):
        processor(layout='nested')
    with pytest.raises(ValueError, match='text_encoding'):
        processor(text_encoding='modern')
    with pytest.raises(ValueError, match='backend'):
        processor(backend='opencv')
    with pytest.raises(ValueError, match='num_image_features and image_size'):
        LlavaProcessor(WORD_TOK)


def test_question_needs_one_image_token_and_no_seg():
    with pytest.raises(ValueError, match='sample 3.*<image>'):
        tokenize(question='Can you segment the red shape?')
    with pytest.raises(ValueError, match='exactly one'):
        tokenize(question='<image> <image> red shape?')
    with pytest.raises(ValueError, match='sample 3: a question contains'):
        tokenize(question='<image> what is <SEG> ?')
    with pytest.raises(ValueError, match='question 2 must not'):
        processor()(IMAGE, [(QUESTION, ANSWER), ('<image> again', ANSWER)])


def test_unknown_template_raises():
    with pytest.raises(ValueError, match='llava_v1'):
        processor(template='vicuna_v0')


def test_custom_template_dict():
    p = processor(template=dict(system='', roles=('Human', 'Gpt')))
    assert p.encoder.template.head() == 'Human: '
    assert p.encoder.template.tail() == ' Gpt:'


def test_without_bos_token_supervises_answers_only():
    tok = build_tokenizer(WORD_TOK)
    tok.bos_token = None  # e.g. byte-level BPE tokenizers have none
    p = processor(tok, layout='multi_turn')
    out = p(IMAGE, [(QUESTION, 'Sure, <SEG>.'), ('And the blue one?', 'It is <SEG>.')])
    ids, labels = out['input_ids'][0], out['labels'][0]
    assert toks(p.tokenizer, ids)[:3] == ['user', ':', '<image>']
    assert toks(p.tokenizer, ids[labels != -100]) == A_TOKENS + ['it', 'is', '<SEG>', '.', '</s>']


def test_seg_and_rejection_tokens_are_processor_facts():
    p = processor(seg_token='[SEG]', rej_token='[REJ]')
    out = p(IMAGE, [(QUESTION, ANSWER)])
    assert p.tokenizer.convert_ids_to_tokens(p.seg_token_id) == '[SEG]'
    assert int((out['input_ids'][0] == p.seg_token_id).sum()) == 1  # <SEG> written as [SEG]
    assert p.rej_token_id == p.tokenizer.convert_tokens_to_ids('[REJ]')
    assert processor().rej_token_id is None


# ---------------------------------------------------------------------------------------------
# Image


def test_clip_pixels_shape_and_values():
    rgb = (100, 150, 200)
    x = processor()(const_image(20, 40, rgb), [(QUESTION, ANSWER)])['vision']['pixel_values']
    assert tuple(x.shape) == (3, 32, 32) and x.dtype == torch.float32
    for c in range(3):
        expected = (rgb[c] / 255 - CLIP_MEAN[c]) / CLIP_STD[c]
        assert torch.allclose(x[c], torch.full((32, 32), expected), atol=1e-4)


def test_clip_center_crop_of_wide_image():
    # 16 x 64 image: red left quarter, blue elsewhere; resize shortest side to 32 gives
    # 32 x 128, centre crop keeps columns 48-79, which are all blue.
    img = const_image(16, 64, (0, 0, 255))
    img[:, :16] = (255, 0, 0)
    x = processor().preprocess_image(torch.from_numpy(img))['pixel_values']
    assert tuple(x.shape) == (3, 32, 32)
    blue = (1.0 - CLIP_MEAN[2]) / CLIP_STD[2]
    red = (0.0 - CLIP_MEAN[0]) / CLIP_STD[0]
    assert torch.allclose(x[2], torch.full((32, 32), blue), atol=1e-4)
    assert torch.allclose(x[0], torch.full((32, 32), red), atol=1e-4)


def test_image_must_be_rgb_uint8():
    with pytest.raises(ValueError, match=r'x\.jpg.*\(H, W, 3\) uint8'):
        processor()(np.zeros((8, 8), np.uint8), [(QUESTION, ANSWER)], name='x.jpg')
    with pytest.raises(FileNotFoundError, match='preprocessor_config.json'):
        processor(image_processor='/nonexistent')


def test_collate_vision_gives_each_sequence_its_image():
    p = processor()
    visions = [p.preprocess_image(const_image(8, 8, (v, v, v))) for v in (0, 255)]
    out = p.collate_vision(visions, torch.tensor([0, 0, 1]))
    assert out['pixel_values'].shape == (3, 3, 32, 32)
    assert torch.equal(out['pixel_values'][1], visions[0]['pixel_values'])
    assert torch.equal(out['pixel_values'][2], visions[1]['pixel_values'])


# ---------------------------------------------------------------------------------------------
# Built by the backbone


def test_backbone_fills_the_image_facts_from_its_model_config(tiny_cfg):
    cfg = copy.deepcopy(tiny_cfg.model.backbone.to_dict())
    cfg['llava_config']['vision_config'].update(image_size=48)  # 6 x 6 patches
    torch.manual_seed(0)
    backbone = MODELS.build(cfg)
    p = backbone.processor
    assert PROCESSORS.get('LlavaProcessor') is type(p)
    assert (p.num_image_features, p.image_processor.crop_size['height']) == (36, 48)
    assert backbone.tokenizer is p.tokenizer and backbone.seg_token_id == p.seg_token_id
    # max_text_length=64 counts the image as one token, whatever the feature count
    assert (p.cut_length, p.max_length) == (64, 64 + 35)
    cfg['processor']['num_image_features'] = 16
    with pytest.raises(ValueError, match='processor.num_image_features=16.*gives 36'):
        MODELS.build(cfg)


def test_top_level_tokenizer_is_deprecated(tiny_cfg):
    cfg = copy.deepcopy(tiny_cfg.model.backbone.to_dict())
    tokenizer = cfg['processor'].pop('tokenizer')
    torch.manual_seed(0)
    with pytest.warns(FutureWarning, match='processor.tokenizer'):
        backbone = MODELS.build(dict(cfg, tokenizer=tokenizer))
    assert backbone.tokenizer.convert_tokens_to_ids('<SEG>') == backbone.seg_token_id
    with pytest.raises(ValueError, match='disagree'):
        MODELS.build(dict(cfg, tokenizer='/elsewhere', processor=dict(tokenizer=WORD_TOK)))
    with pytest.raises(ValueError, match='processor.tokenizer is not set'):
        MODELS.build(dict(cfg, processor=dict(template='plain')))


def test_swapping_the_processor_changes_nothing_in_the_dataset_config(tiny_cfg):
    """The data pipeline emits neutral samples: two processors (LISA's per-query
    llava_v1 layout, the demo's plain multi-turn one) read the same dataset items."""
    dataset_cfg = tiny_cfg.train_dataloader.dataset.to_dict()
    text = repr(dataset_cfg)
    for key in ('tokenizer', 'template', 'max_length', 'clip', 'CLIP', 'Tokenize'):
        assert key not in text
    dataset_cfg['num_samples'] = 2
    items = [DATASETS.build(dataset_cfg)[i] for i in range(2)]
    rows = []
    no_cut = dict(max_length=None, max_text_length=None)
    for processor_cfg in (dict(), dict(template='llava_v1', layout='per_query', **no_cut)):
        cfg = copy.deepcopy(tiny_cfg.model.to_dict())
        cfg['backbone']['processor'].update(processor_cfg)
        torch.manual_seed(0)
        model = MODELS.build(cfg)
        data = model.data_preprocessor(pseudo_collate(copy.deepcopy(items)), True)
        assert torch.isfinite(model(**data, mode='loss')['loss_ce'])
        rows.append(data['inputs']['input_ids'])
    assert rows[0].shape[1] < rows[1].shape[1]  # the system prompt of llava_v1
