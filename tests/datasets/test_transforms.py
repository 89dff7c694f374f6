"""Unit tests of lisakit.datasets.transforms and lisakit.tokenizers (the backbone's text
and CLIP conventions: tests/models/test_llava_processor.py)."""

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from PIL import Image

from lisakit.datasets import ShapesReasonSegDataset
from lisakit.datasets.transforms import LoadImageFromFile, PackLISAInputs, SAMPreprocess
from lisakit.registry import DATASETS, TRANSFORMS
from lisakit.structures import ReasonSegDataSample
from lisakit.tokenizers import HFTokenizer, build_tokenizer

SAM_MEAN = (123.675, 116.28, 103.53)
SAM_STD = (58.395, 57.12, 57.375)
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
    from lisakit.tokenizers import CONVERSATION_TEMPLATES

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


QUESTION = '<image>\nCan you segment the red shape in this image?'
ANSWER = 'Sure, <SEG>.'
ONE_MASK = np.zeros((1, 4, 4), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# PackLISAInputs and the whole pipeline


def pipeline():
    return [LoadImageFromFile(), SAMPreprocess(img_size=32), PackLISAInputs()]


def pack(question=QUESTION, answer=ANSWER, masks=ONE_MASK, **extra):
    results = dict(img=const_image(4, 4), sam_image=torch.zeros(3, 4, 4), sample_idx=3)
    results.update(question=question, answer=answer, gt_masks=masks, **extra)
    return PackLISAInputs()(results)


def test_pack_lisa_inputs_from_dataset():
    raw = ShapesReasonSegDataset(num_samples=3, seed=0)
    ds = ShapesReasonSegDataset(num_samples=3, seed=0, pipeline=pipeline())
    for i in range(3):
        out, info = ds[i], raw[i]
        assert set(out) == {'inputs', 'data_samples'}
        inputs, sample = out['inputs'], out['data_samples']
        assert set(inputs) == {'img', 'sam_image'}  # backbone-neutral
        assert inputs['sam_image'].shape == (3, 32, 32)
        assert inputs['img'].dtype == torch.uint8 and inputs['img'].shape == (64, 64, 3)
        assert np.array_equal(inputs['img'].numpy(), info['img'])
        assert sample.conversations == [(info['question'], info['answer'])]  # one query
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
    # An empty answer is a generation prompt (the processor supervises nothing).
    assert sample.conversations == [(QUESTION, '')]


def test_pack_conversation_turns_in_order():
    turns = [dict(question=QUESTION, answer=ANSWER), dict(question='And blue?', answer='<SEG>.')]
    masks = np.zeros((2, 4, 4), np.uint8)
    sample = pack(conversations=turns, masks=masks)['data_samples']
    assert sample.conversations == [(QUESTION, ANSWER), ('And blue?', '<SEG>.')]
    with pytest.raises(KeyError, match='conversations'):
        pack(conversations=[dict(question=QUESTION)])
    with pytest.raises(KeyError, match="'question'"):
        PackLISAInputs()(dict(img=const_image(4, 4), sam_image=None, sample_idx=0))


def test_pack_seg_count_must_match_masks():
    with pytest.raises(ValueError, match='2 <SEG> tokens but there are 1 masks'):
        pack(answer='<SEG> and <SEG>.')
    with pytest.raises(ValueError, match='0 <SEG> tokens'):
        pack(answer='Sure.')
    # Without gt_masks (e.g. inference) the count is not checked.
    assert pack(answer='Sure.', masks=None)['data_samples'].conversations[0][1] == 'Sure.'


def test_pack_question_needs_one_image_token():
    with pytest.raises(ValueError, match='sample 3.*<image>'):
        pack(question='Can you segment the red shape?')
    with pytest.raises(ValueError, match='exactly one'):
        pack(question='<image> <image> red shape?')


def test_transforms_are_registered():
    for name in ('LoadImageFromFile', 'SAMPreprocess', 'PackLISAInputs'):
        assert TRANSFORMS.get(name) is not None
    t = TRANSFORMS.build(dict(type='SAMPreprocess', img_size=16))
    assert isinstance(t, SAMPreprocess) and t.img_size == 16


@pytest.mark.parametrize(
    'step, fix',
    [
        (dict(type='TokenizeConversation', tokenizer=WORD_TOK, template='plain'), 'template'),
        (dict(type='CLIPPreprocess', size=32), 'backend'),
    ],
)
def test_old_tokenize_and_clip_steps_fail_with_the_migration(step, fix):
    """A pipeline that still lists a step moved into the backbone's processor fails when
    the dataset is built, naming the step and the fix."""
    init_default_scope('lisakit')
    steps = [dict(type='LoadImageFromFile'), step, dict(type='PackLISAInputs')]
    with pytest.raises(
        ValueError, match=rf"'{step['type']}' was removed.*{fix}.*model\.backbone\.processor"
    ):
        DATASETS.build(dict(type='ShapesReasonSegDataset', num_samples=1, pipeline=steps))
