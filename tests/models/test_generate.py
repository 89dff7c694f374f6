"""Generation-based prediction: masks from the <SEG> tokens the model writes."""

import copy

import pytest
import torch
from mmengine.dataset import pseudo_collate

from lisakit.registry import DATASETS, MODELS


@pytest.fixture(scope='module')
def model_and_data(tiny_cfg, small_dataset_cfg):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg.model).eval()
    dataset = DATASETS.build(small_dataset_cfg('val', 3))  # answer '<SEG>.', teacher-forced
    batch = pseudo_collate([dataset[i] for i in range(3)])
    return model, batch


def _run(model, batch, mode, **generation_cfg):
    model.predict_mode = mode
    model.generation_cfg = dict(max_new_tokens=4, **generation_cfg)
    data = model.data_preprocessor(copy.deepcopy(batch), False)
    with torch.no_grad():
        return model(**data, mode='predict')


def test_forced_seg_answer_reproduces_teacher_forcing(model_and_data):
    model, batch = model_and_data
    tok = model.backbone.tokenizer
    answer = tok('<SEG> .', add_special_tokens=False)['input_ids'] + [tok.eos_token_id]
    prompt_len = {}

    def force_answer(batch_id, ids):  # constrained decoding: the answer '<SEG>.'
        start = prompt_len.setdefault(batch_id, len(ids))
        return [answer[min(len(ids) - start, len(answer) - 1)]]

    teacher = _run(model, batch, 'teacher_forced')
    for i in range(len(teacher)):
        prompt_len.clear()
        generated = _run(
            model,
            pseudo_collate([batch_item(batch, i)]),
            'generate',
            prefix_allowed_tokens_fn=force_answer,
        )[0]
        assert generated.num_generated_seg == 1
        assert generated.pred_text.replace(' ', '') == '<SEG>.'
        assert torch.equal(generated.pred_masks, teacher[i].pred_masks)


def test_free_generation_matches_target_count(model_and_data):
    model, batch = model_and_data
    for sample in _run(model, batch, 'generate'):
        assert sample.pred_masks.shape == sample.gt_masks.shape  # padded or cut to targets
        assert sample.pred_masks.dtype == torch.bool
        assert isinstance(sample.pred_text, str)


def test_default_generation_length_is_lisas(tiny_model_cfg):
    """LISA's chat writes up to 512 new tokens (stopping at EOS); the tiny demo sets 32."""
    assert MODELS.build(tiny_model_cfg).generation_cfg == dict(max_new_tokens=32)
    del tiny_model_cfg['generation_cfg']
    assert MODELS.build(tiny_model_cfg).generation_cfg == dict(max_new_tokens=512)


def test_unknown_predict_mode(tiny_model_cfg):
    tiny_model_cfg['predict_mode'] = 'beam'
    with pytest.raises(ValueError, match='predict_mode'):
        MODELS.build(tiny_model_cfg)


def batch_item(batch, i):
    """The i-th packed sample of a pseudo-collated batch."""
    inputs = {k: v[i] for k, v in batch['inputs'].items()}
    return dict(inputs=inputs, data_samples=batch['data_samples'][i])


def _force(tok, text):
    """``prefix_allowed_tokens_fn`` writing ``text`` then EOS, whatever the batch layout:
    the tokens written so far are the trailing run of the answer's tokens."""
    answer = tok(text, add_special_tokens=False)['input_ids'] + [tok.eos_token_id]

    def allowed(batch_id, ids):
        ids, k = ids.tolist(), 0
        while k < len(ids) and ids[len(ids) - 1 - k] in answer:
            k += 1
        return [answer[min(k, len(answer) - 1)]]

    return allowed


def test_batched_generate_equals_batch_one(model_and_data):
    """One left-padded batch gives each sample's batch-1 ids, <SEG> states and masks."""
    model, batch = model_and_data
    data = model.data_preprocessor(copy.deepcopy(batch), False)
    ids = data['inputs']['input_ids']
    prompt_lengths = (data['inputs']['labels'] == -100).int().argmin(1)
    assert len(set(prompt_lengths.tolist())) > 1, 'prompts of different lengths: padding used'
    forced = _force(model.backbone.tokenizer, '<SEG> . <SEG>')
    batched = _run(model, batch, 'generate', prefix_allowed_tokens_fn=forced)
    free = model.backbone.generate(*_left_padded(model, data), max_new_tokens=6)
    for i in range(len(ids)):
        alone = _run(
            model,
            pseudo_collate([batch_item(batch, i)]),
            'generate',
            prefix_allowed_tokens_fn=forced,
        )[0]
        assert batched[i].num_generated_seg == alone.num_generated_seg == 2
        assert batched[i].pred_text == alone.pred_text
        assert torch.equal(batched[i].pred_masks, alone.pred_masks)
        torch.testing.assert_close(batched[i].pred_iou_scores, alone.pred_iou_scores)
        one = model.data_preprocessor(pseudo_collate([batch_item(batch, i)]), False)
        single = model.backbone.generate(*_left_padded(model, one), max_new_tokens=6)
        width = single['new_tokens'].shape[1]
        assert torch.equal(free['new_tokens'][i, :width], single['new_tokens'][0])


def _left_padded(model, data):
    from lisakit.models.segmentors.grouping import left_padded_prompts

    inputs = data['inputs']
    pad = model.backbone.tokenizer.pad_token_id
    ids, mask = left_padded_prompts(inputs['input_ids'], inputs['labels'], pad, -100)
    return ids, mask, inputs['vision']


def test_generate_returns_the_states_of_a_full_forward(model_and_data):
    """The <SEG> states kept from ``generate`` equal a second full forward's (the old way)."""
    model, batch = model_and_data
    data = model.data_preprocessor(pseudo_collate([batch_item(batch, 0)]), False)
    ids, mask, vision = _left_padded(model, data)  # one prompt: no padding
    forced = _force(model.backbone.tokenizer, '<SEG> . <SEG>')
    with torch.no_grad():
        out = model.backbone.generate(
            ids, mask, vision, max_new_tokens=6, prefix_allowed_tokens_fn=forced
        )
        seq = out['sequences']
        full = model.backbone.forward_expanded(seq, torch.ones_like(seq), vision['pixel_values'])
    assert len(out['seg_embeds'][0]) == 2
    torch.testing.assert_close(out['seg_embeds'][0], full['seg_embeds'][0])
