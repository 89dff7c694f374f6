"""Unit tests of lisakit.datasets.transforms and lisakit.tokenizers."""

import numpy as np
import pytest
import torch
from PIL import Image

from lisakit.datasets import ShapesReasonSegDataset
from lisakit.datasets.transforms import (
    CLIPPreprocess,
    LoadImageFromFile,
    PackLISAInputs,
    SAMPreprocess,
    TokenizeConversation,
)
from lisakit.registry import TRANSFORMS
from lisakit.structures import ReasonSegDataSample
from lisakit.tokenizers import HFTokenizer, build_tokenizer

SAM_MEAN = (123.675, 116.28, 103.53)
SAM_STD = (58.395, 57.12, 57.375)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
WORD_TOK = dict(type='WordTokenizer')

# ---------------------------------------------------------------------------------------------
# SAMPreprocess


def const_image(h, w, rgb=(100, 150, 200)):
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (h, w, 3)).copy()


@pytest.mark.parametrize(
    'hw, resized',
    [
        ((20, 10), (32, 16)),  # tall: H -> 32, W = 10 * 32 / 20 = 16
        ((10, 20), (16, 32)),  # wide
        ((30, 20), (32, 21)),  # W = 20 * 32 / 30 = 21.33 -> 21
        ((32, 32), (32, 32)),  # already the right size
        ((64, 48), (32, 24)),  # downscale
    ],
)
def test_sam_preprocess_resize_normalize_pad(hw, resized):
    rgb = (100, 150, 200)
    out = SAMPreprocess(img_size=32)(dict(img=const_image(*hw, rgb)))
    x = out['sam_image']
    assert out['sam_resize'] == resized
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    h, w = resized
    for c in range(3):
        expected = (rgb[c] - SAM_MEAN[c]) / SAM_STD[c]
        assert torch.allclose(x[c, :h, :w], torch.full((h, w), expected), atol=1e-5)
    # Zero padding after normalization (right and bottom only).
    assert (x[:, h:, :] == 0).all()
    assert (x[:, :, w:] == 0).all()


def test_sam_preprocess_values_without_resize():
    img = np.zeros((8, 16, 3), dtype=np.uint8)
    img[:, 8:] = 255
    out = SAMPreprocess(img_size=16)(dict(img=img))
    x = out['sam_image']
    assert out['sam_resize'] == (8, 16)
    # Left half: (0 - mean) / std; right half: (255 - mean) / std; rows 8.. are padding.
    assert x[0, 0, 0].item() == pytest.approx(-123.675 / 58.395, rel=1e-6)
    assert x[2, 7, 15].item() == pytest.approx((255 - 103.53) / 57.375, rel=1e-6)
    assert (x[:, 8:] == 0).all()


def test_sam_preprocess_custom_mean_std():
    out = SAMPreprocess(img_size=4, mean=(10, 20, 30), std=(2, 4, 5))(
        dict(img=const_image(4, 4, (50, 60, 70)))
    )
    assert out['sam_image'][:, 0, 0].tolist() == pytest.approx([20.0, 10.0, 8.0])


# ---------------------------------------------------------------------------------------------
# CLIPPreprocess


def test_clip_preprocess_shape_and_values():
    rgb = (100, 150, 200)
    out = CLIPPreprocess(size=32)(dict(img=const_image(20, 40, rgb)))
    x = out['clip_image']
    assert tuple(x.shape) == (3, 32, 32)
    for c in range(3):
        expected = (rgb[c] / 255 - CLIP_MEAN[c]) / CLIP_STD[c]
        assert torch.allclose(x[c], torch.full((32, 32), expected), atol=1e-4)


def test_clip_preprocess_center_crop_of_wide_image():
    # 16 x 64 image: red left quarter, blue elsewhere; resize shortest side to 32 gives
    # 32 x 128, centre crop keeps columns 48-79, which are all blue.
    img = const_image(16, 64, (0, 0, 255))
    img[:, :16] = (255, 0, 0)
    x = CLIPPreprocess(size=32)(dict(img=img))['clip_image']
    assert tuple(x.shape) == (3, 32, 32)
    blue = (1.0 - CLIP_MEAN[2]) / CLIP_STD[2]
    red = (0.0 - CLIP_MEAN[0]) / CLIP_STD[0]
    assert torch.allclose(x[2], torch.full((32, 32), blue), atol=1e-4)
    assert torch.allclose(x[0], torch.full((32, 32), red), atol=1e-4)


# ---------------------------------------------------------------------------------------------
# LoadImageFromFile


def test_load_grayscale_png_as_rgb(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = tmp_path / 'gray.png'
    Image.fromarray(gray, mode='L').save(path)
    out = LoadImageFromFile()(dict(img_path=str(path)))
    assert out['img'].shape == (3, 4, 3) and out['img'].dtype == np.uint8
    for c in range(3):
        assert np.array_equal(out['img'][..., c], gray)
    assert out['ori_shape'] == (3, 4)


def test_load_rgba_png_drops_alpha(tmp_path):
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 10, 20, 30, 0
    rgba[0, 0] = (200, 100, 50, 255)
    path = tmp_path / 'rgba.png'
    Image.fromarray(rgba, mode='RGBA').save(path)
    out = LoadImageFromFile()(dict(img_path=str(path)))
    assert out['img'].shape == (2, 3, 3)
    assert out['img'][0, 0].tolist() == [200, 100, 50]
    assert out['img'][1, 2].tolist() == [10, 20, 30]


def test_load_exif_rotated_jpeg(tmp_path):
    # Stored 16 wide x 8 high, left half red, right half blue, with EXIF orientation 6
    # ("rotate 90 degrees clockwise to display"): loaded as 8 wide x 16 high, red on top.
    img = np.zeros((8, 16, 3), dtype=np.uint8)
    img[:, :8] = (255, 0, 0)
    img[:, 8:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / 'rotated.jpg'
    Image.fromarray(img).save(path, exif=exif, quality=95)
    out = LoadImageFromFile()(dict(img_path=str(path)))
    assert out['img'].shape == (16, 8, 3)
    assert out['ori_shape'] == (16, 8)
    top, bottom = out['img'][2, 4].astype(int), out['img'][13, 4].astype(int)
    assert top[0] > 200 and top[2] < 60  # red
    assert bottom[2] > 200 and bottom[0] < 60  # blue


def test_load_cmyk_jpeg_as_rgb(tmp_path):
    path = tmp_path / 'cmyk.jpg'
    Image.new('CMYK', (6, 4), (0, 255, 255, 0)).save(path, quality=100)  # pure red in CMYK
    out = LoadImageFromFile()(dict(img_path=str(path)))
    assert out['img'].shape == (4, 6, 3) and out['img'].dtype == np.uint8
    r, g, b = out['img'][2, 3].astype(int)
    assert r > 230 and g < 30 and b < 30


def test_load_16bit_png_scales_to_8bit(tmp_path):
    raw = np.array([[0, 257 * 100], [257 * 200, 65535]], dtype=np.uint16)
    path = tmp_path / 'depth16.png'
    Image.fromarray(raw).save(path)
    out = LoadImageFromFile()(dict(img_path=str(path)))
    assert out['img'].shape == (2, 2, 3)
    assert out['img'][..., 0].tolist() == [[0, 100], [200, 255]]  # scaled, not clipped to 255
    assert np.array_equal(out['img'][..., 0], out['img'][..., 2])


def test_load_palette_png_as_rgb(tmp_path):
    index = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    im = Image.fromarray(index, mode='P')
    im.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    path = tmp_path / 'palette.png'
    im.save(path)
    out = LoadImageFromFile()(dict(img_path=str(path)))
    assert out['img'][0, 0].tolist() == [10, 20, 30]
    assert out['img'][0, 1].tolist() == [200, 100, 50]


def test_load_truncated_jpeg_names_the_path(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    full = tmp_path / 'full.jpg'
    Image.fromarray(pixels).save(full, quality=90)
    cut = tmp_path / 'cut_in_half.jpg'
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match='cut_in_half.jpg'):
        LoadImageFromFile()(dict(img_path=str(cut)))


def test_load_missing_file_names_the_path(tmp_path):
    path = str(tmp_path / 'nope' / 'missing.jpg')
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        LoadImageFromFile()(dict(img_path=path))


def test_load_without_path_raises():
    with pytest.raises(FileNotFoundError):
        LoadImageFromFile()(dict(img_path=None))


@pytest.mark.parametrize('content', [b'this is not an image', b'\xff\xd8\xff\xe0\x00\x10JFIF'])
def test_load_corrupt_file_names_the_path(tmp_path, content):
    path = tmp_path / 'corrupt_image.jpg'
    path.write_bytes(content)
    with pytest.raises(ValueError, match='corrupt_image.jpg'):
        LoadImageFromFile()(dict(img_path=str(path)))


def test_load_passes_through_existing_img():
    img = const_image(5, 7)
    out = LoadImageFromFile()(dict(img=img, img_path=None))
    assert out['img'] is img
    assert out['ori_shape'] == (5, 7)


# ---------------------------------------------------------------------------------------------
# Tokenizers


def test_build_word_tokenizer_is_deterministic():
    a = build_tokenizer(WORD_TOK)
    b = build_tokenizer(WORD_TOK)
    assert a.get_vocab() == b.get_vocab()
    assert '<SEG>' in a.get_vocab() and '<image>' in a.get_vocab()
    text = '<image>\nCan you segment the red shape in this image? Sure, <SEG>.'
    ids_a = a(text, add_special_tokens=False)['input_ids']
    assert ids_a == b(text, add_special_tokens=False)['input_ids']
    # <SEG> and <image> are single tokens.
    assert ids_a.count(a.convert_tokens_to_ids('<SEG>')) == 1
    assert ids_a[0] == a.convert_tokens_to_ids('<image>')
    assert a.convert_ids_to_tokens(ids_a[1:4]) == ['can', 'you', 'segment']
    assert a.pad_token is not None and a.eos_token == '</s>' and a.bos_token == '<s>'


def test_word_tokenizer_knows_every_template_word():
    # Every piece of the conversation templates (system prompt, 'USER: ', ' ASSISTANT:')
    # is in the default vocabulary, so nothing in a rendered prompt maps to <unk>.
    from lisakit.datasets.transforms.conversation import CONVERSATION_TEMPLATES

    tok = build_tokenizer(WORD_TOK)
    for name, template in CONVERSATION_TEMPLATES.items():
        for text in (template.head(), template.tail()):
            ids = tok(text, add_special_tokens=False)['input_ids']
            assert tok.unk_token_id not in ids, (name, text, tok.convert_ids_to_tokens(ids))


def test_build_tokenizer_bad_config():
    with pytest.raises(TypeError):
        build_tokenizer(42)


def test_hf_tokenizer_missing_folder():
    with pytest.raises(FileNotFoundError, match='/nonexistent'):
        HFTokenizer('/nonexistent')
    with pytest.raises(FileNotFoundError, match='/nonexistent'):
        build_tokenizer('/nonexistent')


# ---------------------------------------------------------------------------------------------
# TokenizeConversation (LISA's ids on a LLaMA tokenizer: tests/tokenizers/test_lisa_fidelity.py)

QUESTION = '<image>\nCan you segment the red shape in this image?'
Q_TOKENS = ['<image>', 'can', 'you', 'segment', 'the', 'red', 'shape', 'in', 'this', 'image', '?']
ANSWER = 'Sure, <SEG>.'
A_TOKENS = ['sure', ',', '<SEG>', '.', '</s>']
ONE_MASK = np.zeros((1, 4, 4), dtype=np.uint8)
#: The tiny tokenizer has no image features to speak of: max_length counts text only.
NO_FEATURES = dict(num_image_features=1)


def tokenize(template='plain', max_length=512, question=QUESTION, answer=ANSWER, masks=ONE_MASK):
    t = TokenizeConversation(WORD_TOK, template=template, max_length=max_length, **NO_FEATURES)
    out = t(dict(question=question, answer=answer, gt_masks=masks, sample_idx=3))
    return t.tokenizer, out


def toks(tok, ids):
    return tok.convert_ids_to_tokens(ids.tolist())


def three_queries(**kwargs):
    t = TokenizeConversation(WORD_TOK, template='plain', **NO_FEATURES, **kwargs)
    names = ['red shape', 'blue circle', 'green square']
    turns = [
        dict(question=('<image>\n' if k == 0 else '') + f'Please segment the {n} in this image.',
             answer=a)
        for k, (n, a) in enumerate(zip(names, ['It is <SEG>.', 'Sure, <SEG>.', '<SEG>.']))
    ]  # fmt: skip
    masks = np.stack([np.full((4, 4), k, dtype=np.uint8) for k in range(3)])
    return t, dict(conversations=turns, gt_masks=masks, sample_idx=0, query_type='short')


def test_tokenize_plain_template():
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


def test_tokenize_llava_v1_template():
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


def test_tokenize_generation_prompt_has_no_labels():
    tok, out = tokenize('plain', answer='', masks=None)
    ids, labels = out['input_ids'][0], out['labels'][0]
    assert toks(tok, ids)[-2:] == ['assistant', ':'] and (labels == -100).all()


def test_tokenize_per_query_layout_one_sequence_per_query():
    t, results = three_queries()
    out = t(results)
    assert len(out['input_ids']) == len(out['labels']) == 3
    seg = t.tokenizer.convert_tokens_to_ids('<SEG>')
    image = t.tokenizer.convert_tokens_to_ids('<image>')
    for ids, labels in zip(out['input_ids'], out['labels']):
        words = toks(t.tokenizer, ids)
        assert words[:4] == ['<s>', 'user', ':', '<image>']  # every query has its image
        assert int((ids == image).sum()) == 1 and int((ids == seg).sum()) == 1
        assert words[-1] == '</s>' and labels[-1] == t.tokenizer.eos_token_id
    assert 'blue' in toks(t.tokenizer, out['input_ids'][1])
    assert np.array_equal(out['gt_masks'][:, 0, 0], [0, 1, 2])  # <SEG> order kept


def test_tokenize_multi_turn_layout_and_dialogues_stay_one_sequence():
    t, results = three_queries(layout='multi_turn')
    out = t(results)
    assert len(out['input_ids']) == 1
    words = toks(t.tokenizer, out['input_ids'][0])
    assert words.count('<image>') == 1 and words.count('<SEG>') == 3
    assert words.count('</s>') == 3 and int((out['labels'][0] == 2).sum()) == 3
    t, results = three_queries()
    results['query_type'] = 'vqa'  # dialogue_query_types: one sequence
    assert len(t(results)['input_ids']) == 1


def test_tokenize_hard_cut_counts_image_features():
    # max_length counts the expanded image: the sample has 21 tokens with one image
    # token; with 6 image features it needs max_length 26, and 21 cuts it to 16 tokens.
    def run(max_length):
        t = TokenizeConversation(WORD_TOK, template='plain', max_length=max_length,
                                 num_image_features=6)  # fmt: skip
        return t, t(dict(question=QUESTION, answer=ANSWER, gt_masks=ONE_MASK, sample_idx=0))

    _, out = run(26)
    assert len(out['input_ids'][0]) == 21 and 'truncated_masks' not in out
    t, out = run(21)
    assert len(out['input_ids'][0]) == len(out['labels'][0]) == 16
    assert toks(t.tokenizer, out['input_ids'][0])[-2:] == ['assistant', ':']  # a hard cut
    assert out['truncated_masks'] == 1 and out['gt_masks'].shape == (0, 4, 4)


def test_tokenize_cut_seg_drops_its_mask_only():
    t, results = three_queries(max_length=12)
    out = t(results)
    # 12 tokens: <s> user : <image> please segment the <colour> <shape> in this image
    assert [len(x) for x in out['input_ids']] == [12, 12, 12]
    assert out['truncated_masks'] == 3 and out['gt_masks'].shape == (0, 4, 4)
    # 17 tokens: "<s> user : <image> please segment the (2 words) in this image . assistant :"
    # is 15, then "it is", "sure ," or "<SEG> ." (only the last answer keeps its <SEG>)
    t, results = three_queries(max_length=17)
    out = t(results)
    assert [int((x == t.tokenizer.convert_tokens_to_ids('<SEG>')).sum()) for x in
            out['input_ids']] == [0, 0, 1]  # fmt: skip
    assert out['truncated_masks'] == 2 and np.array_equal(out['gt_masks'][:, 0, 0], [2])


def test_tokenize_too_small_max_length_raises():
    with pytest.raises(ValueError, match='max_length=100'):
        TokenizeConversation(WORD_TOK, max_length=100, num_image_features=256)


def test_tokenize_bad_options_raise():
    with pytest.raises(ValueError, match='layout'):
        TokenizeConversation(WORD_TOK, layout='nested')
    with pytest.raises(ValueError, match='text_encoding'):
        TokenizeConversation(WORD_TOK, text_encoding='modern')


def test_tokenize_seg_count_must_match_masks():
    with pytest.raises(ValueError, match='2 <SEG> tokens but there are 1 masks'):
        tokenize(answer='<SEG> and <SEG>.')
    with pytest.raises(ValueError, match='0 <SEG> tokens'):
        tokenize(answer='Sure.')
    # Without gt_masks (e.g. inference) the count is not checked.
    _, out = tokenize(answer='Sure.', masks=None)
    assert len(out['input_ids'][0]) == 3 + 11 + 2 + 3


def test_tokenize_question_needs_one_image_token():
    with pytest.raises(ValueError, match='sample 3.*<image>'):
        tokenize(question='Can you segment the red shape?')
    with pytest.raises(ValueError, match='exactly one'):
        tokenize(question='<image> <image> red shape?')


def test_tokenize_unknown_template_raises():
    with pytest.raises(ValueError, match='llava_v1'):
        TokenizeConversation(WORD_TOK, template='vicuna_v0')


def test_tokenize_custom_template_dict():
    t = TokenizeConversation(WORD_TOK, template=dict(system='', roles=('Human', 'Gpt')))
    assert t.template.head() == 'Human: '
    assert t.template.tail() == ' Gpt:'


# ---------------------------------------------------------------------------------------------
# PackLISAInputs and the whole pipeline


def pipeline():
    return [
        LoadImageFromFile(),
        SAMPreprocess(img_size=32),
        CLIPPreprocess(size=32),
        TokenizeConversation(WORD_TOK, template='plain', num_image_features=16),
        PackLISAInputs(),
    ]


def test_pack_lisa_inputs_from_dataset():
    raw = ShapesReasonSegDataset(num_samples=3, seed=0)
    ds = ShapesReasonSegDataset(num_samples=3, seed=0, pipeline=pipeline())
    for i in range(3):
        out, info = ds[i], raw[i]
        assert set(out) == {'inputs', 'data_samples'}
        inputs, sample = out['inputs'], out['data_samples']
        assert set(inputs) == {'input_ids', 'labels', 'seq_lengths', 'sam_image', 'clip_image'}
        assert inputs['sam_image'].shape == (3, 32, 32)
        assert inputs['clip_image'].shape == (3, 32, 32)
        assert inputs['seq_lengths'].tolist() == [len(inputs['input_ids'])]  # one query
        assert inputs['input_ids'].shape == inputs['labels'].shape
        assert isinstance(sample, ReasonSegDataSample)
        assert isinstance(sample.gt_masks, torch.Tensor)
        assert sample.gt_masks.dtype == torch.uint8 and sample.gt_masks.shape == (1, 64, 64)
        assert np.array_equal(sample.gt_masks.numpy(), info['gt_masks'])
        assert sample.question == info['question']
        assert sample.answer == info['answer']
        assert sample.query_type == info['query_type']
        assert sample.is_sentence == info['is_sentence']
        assert sample.sample_idx == i
        assert sample.ori_shape == (64, 64)
        assert sample.sam_resize == (32, 32)
        # Generated samples keep the original image for visualization.
        assert np.array_equal(sample.ori_img, info['img'])
        assert 'shapes' not in sample.metainfo_keys()


def test_pack_lisa_inputs_with_file_and_no_masks(tmp_path):
    path = tmp_path / 'img.png'
    Image.fromarray(const_image(10, 20)).save(path)
    results = dict(img_path=str(path), question=QUESTION, answer='', sample_idx=0)
    for t in pipeline():
        results = t(results)
    sample = results['data_samples']
    assert 'gt_masks' not in sample
    assert sample.img_path == str(path)
    assert 'ori_img' not in sample.metainfo_keys()
    assert sample.ori_shape == (10, 20)
    assert sample.sam_resize == (16, 32)
    # An empty answer is a generation prompt: nothing supervised.
    assert int((results['inputs']['labels'] != -100).sum()) == 0


def test_transforms_are_registered():
    for name in ('LoadImageFromFile', 'SAMPreprocess', 'CLIPPreprocess', 'PackLISAInputs'):
        assert TRANSFORMS.get(name) is not None
    t = TRANSFORMS.build(dict(type='SAMPreprocess', img_size=16))
    assert isinstance(t, SAMPreprocess) and t.img_size == 16


def test_tokenize_without_bos_token_supervises_answers_only():
    tok = build_tokenizer(WORD_TOK)
    tok.bos_token = None  # e.g. byte-level BPE tokenizers have none
    t = TokenizeConversation(tok, template='plain', num_image_features=1, layout='multi_turn')
    turns = [
        dict(question=QUESTION, answer='Sure, <SEG>.'),
        dict(question='And the blue one?', answer='It is <SEG>.'),
    ]
    out = t(dict(conversations=turns, gt_masks=np.zeros((2, 4, 4), np.uint8), sample_idx=0))
    ids, labels = out['input_ids'][0], out['labels'][0]
    assert toks(t.tokenizer, ids)[:3] == ['user', ':', '<image>']
    assert toks(t.tokenizer, ids[labels != -100]) == A_TOKENS + ['it', 'is', '<SEG>', '.', '</s>']
