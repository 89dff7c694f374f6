"""Qwen2_5_VLProcessor against transformers' own chat template rendering and image processor."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2VLImageProcessor

from lisakit.models.processors.qwen2_5_vl_processor import (
    QWEN_IMAGE_TOKEN,
    QWEN_SPECIAL_TOKENS,
    Qwen2_5_VLProcessor,
)
from lisakit.utils.constants import LM_IGNORE_INDEX, SEG_TOKEN

DATA = Path(__file__).parents[1] / 'data' / 'qwen2_5_vl'
#: Qwen2.5-VL-7B-Instruct's chat_template.json (the real Jinja template).
CHAT_TEMPLATE = json.loads((DATA / 'chat_template.json').read_text())['chat_template']
VISION = dict(patch_size=8, temporal_patch_size=2, spatial_merge_size=2)
TURNS = [
    ('<image>\nWhat is the red shape?', f'It is {SEG_TOKEN}.'),
    ('And the blue one ?', f'Sure, {SEG_TOKEN}.'),
]


def _bpe_tokenizer() -> PreTrainedTokenizerFast:
    """A tiny byte-level BPE tokenizer (Qwen's kind: newlines and spaces are bytes)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [q + ' ' + a for q, a in TURNS] + ['You are a helpful assistant.\nuser system']
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=['<|endoftext|>'],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token='<|endoftext|>')


def _processor(tokenizer, **kwargs) -> Qwen2_5_VLProcessor:
    return Qwen2_5_VLProcessor(tokenizer=tokenizer, vision_config=VISION, **kwargs)


def _messages(turns, generation=False):
    """The turns as Hugging Face chat messages (the image in place of ``<image>``)."""
    messages = []
    for question, answer in turns:
        before, _, after = question.rpartition('<image>') if '<image>' in question else ('', '', '')
        content = (
            [dict(type='text', text=before), dict(type='image'), dict(type='text', text=after)]
            if '<image>' in question
            else [dict(type='text', text=question)]
        )
        messages.append(dict(role='user', content=content))
        if answer:
            messages.append(dict(role='assistant', content=[dict(type='text', text=answer)]))
    return messages


@pytest.fixture(scope='module')
def image():
    return np.random.default_rng(0).integers(0, 256, size=(40, 72, 3), dtype=np.uint8)


@pytest.mark.parametrize('tokenizer', ['bpe', 'word'])
@pytest.mark.parametrize('layout', ['multi_turn', 'per_query'])
def test_text_and_ids_match_the_real_chat_template(tokenizer, layout, image):
    tok = _bpe_tokenizer() if tokenizer == 'bpe' else dict(type='WordTokenizer')
    proc = _processor(tok, layout=layout)
    out = proc(image, TURNS)
    n_image = proc.num_image_tokens(out['vision']['image_grid_thw'])
    sequences = (
        [TURNS]
        if layout == 'multi_turn'
        else [[TURNS[0]], [('<image>\n' + TURNS[1][0], TURNS[1][1])]]
    )
    assert len(out['input_ids']) == len(sequences)
    for turns, ids, labels in zip(sequences, out['input_ids'], out['labels']):
        text = proc.tokenizer.apply_chat_template(
            _messages(turns), chat_template=CHAT_TEMPLATE, tokenize=False
        )
        assert proc.render(turns, 1)[0] == text
        # what transformers' Qwen2_5_VLProcessor then does: expand the image, tokenize
        text = text.replace(QWEN_IMAGE_TOKEN, QWEN_IMAGE_TOKEN * n_image)
        assert ids.tolist() == proc.tokenizer(text, add_special_tokens=False)['input_ids']
        assert int((ids == proc.image_token_id).sum()) == n_image
        # labels: each answer and its <|im_end|>, nothing else
        answers = [a for _, a in turns]
        target = [
            proc.tokenizer(a + '<|im_end|>', add_special_tokens=False)['input_ids'] for a in answers
        ]
        got = labels[labels != LM_IGNORE_INDEX].tolist()
        assert got == [i for t in target for i in t]
    assert out['kept_masks'] == [0, 1]


def test_generation_prompt_and_tokens(image):
    proc = _processor(dict(type='WordTokenizer'))
    out = proc(image, [(TURNS[0][0], '')])
    text = proc.tokenizer.apply_chat_template(
        _messages([(TURNS[0][0], '')]),
        chat_template=CHAT_TEMPLATE,
        tokenize=False,
        add_generation_prompt=True,
    )
    assert proc.render([(TURNS[0][0], '')], 1)[0] == text
    assert (out['labels'][0] == LM_IGNORE_INDEX).all()
    assert all(t in proc.tokenizer.get_vocab() for t in QWEN_SPECIAL_TOKENS)
    assert proc.eos_token_id == proc.tokenizer.convert_tokens_to_ids('<|im_end|>')
    assert proc.seg_token_id == proc.tokenizer.convert_tokens_to_ids(SEG_TOKEN)


def test_pixels_match_qwen2vl_image_processor(image, tmp_path):
    proc = _processor(dict(type='WordTokenizer'), min_pixels=64 * 64, max_pixels=96 * 96)
    vision = proc(image, TURNS[:1])['vision']
    ref = Qwen2VLImageProcessor(patch_size=8, merge_size=2, min_pixels=64 * 64, max_pixels=96 * 96)
    expected = ref(images=[torch.from_numpy(image).permute(2, 0, 1)], return_tensors='pt')
    assert torch.equal(vision['pixel_values'], expected['pixel_values'])
    assert torch.equal(vision['image_grid_thw'], expected['image_grid_thw'][0])
    assert vision['pixel_values'].shape == (int(vision['image_grid_thw'].prod()), 3 * 2 * 8 * 8)
    # a pretrained folder: the real preprocessor_config.json (Qwen2.5-VL-7B-Instruct)
    (tmp_path / 'preprocessor_config.json').write_text(
        (DATA / 'preprocessor_config.json').read_text()
    )
    real = Qwen2_5_VLProcessor(tokenizer=dict(type='WordTokenizer'), pretrained=str(tmp_path))
    assert (real.image_processor.patch_size, real.merge_size) == (14, 2)
    assert real.image_processor.size['longest_edge'] == 12845056
    grid = real(image, TURNS[:1])['vision']['image_grid_thw']
    assert grid.tolist() == [1, 4, 6]  # 40 x 72 -> smart resize to 56 x 84 (multiples of 28)
    with pytest.raises(FileNotFoundError, match='preprocessor_config.json'):
        Qwen2_5_VLProcessor(tokenizer=dict(type='WordTokenizer'), pretrained=str(tmp_path / 'x'))


def test_collate_vision_per_sequence(image):
    proc = _processor(dict(type='WordTokenizer'))
    small = proc(image[:16, :16], TURNS[:1])['vision']
    large = proc(image, TURNS[:1])['vision']
    out = proc.collate_vision([small, large], torch.tensor([0, 1, 1]))
    assert torch.equal(
        out['image_grid_thw'],
        torch.stack([small['image_grid_thw'], *[large['image_grid_thw']] * 2]),
    )
    assert torch.equal(
        out['pixel_values'], torch.cat([small['pixel_values'], *[large['pixel_values']] * 2])
    )


def test_max_length_cut_and_errors(image):
    proc = _processor(dict(type='WordTokenizer'), layout='multi_turn')
    full = proc(image, TURNS)['input_ids'][0]
    cut = _processor(dict(type='WordTokenizer'), layout='multi_turn', max_length=len(full) - 4)
    out = cut(image, TURNS)
    assert len(out['input_ids'][0]) == len(full) - 4
    assert out['kept_masks'] == [0]  # the second <SEG> was cut off
    # max_text_length counts the image's <|image_pad|> tokens as one, whatever its size
    pads = int((full == proc.image_token_id).sum())
    text = _processor(
        dict(type='WordTokenizer'), layout='multi_turn', max_text_length=len(full) - 4 - pads + 1
    )
    assert torch.equal(text(image, TURNS)['input_ids'][0], out['input_ids'][0])
    small = text(image[:16, :16], TURNS)['input_ids'][0]
    assert len(small) - int((small == proc.image_token_id).sum()) == len(full) - 4 - pads
    with pytest.raises(ValueError, match='both max_length and max_text_length'):
        _processor(dict(type='WordTokenizer'), max_length=9, max_text_length=9)
    with pytest.raises(ValueError, match='cuts the image'):
        _processor(dict(type='WordTokenizer'), max_length=20)(image, TURNS, name='img.jpg')
    with pytest.raises(ValueError, match=r"img.jpg: a question contains '<SEG>'"):
        proc(image, [(f'<image> {SEG_TOKEN}?', 'a')], name='img.jpg')
    with pytest.raises(ValueError, match='exactly one'):
        proc(image, [('no image', 'a')], name='img.jpg')
    with pytest.raises(ValueError, match='layout'):
        _processor(dict(type='WordTokenizer'), layout='zigzag')
