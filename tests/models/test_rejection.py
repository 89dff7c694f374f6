"""Rejection ([REJ], GSVA): reading generated answers, the first-answer-position choice,
and what a rejected sample holds."""

import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from tool_runner import REPO

from lisakit.apis import inference_model
from lisakit.evaluation import GRefCOCOMetric
from lisakit.models.segmentors.rejection import (
    first_answer_choices,
    generated_rejections,
    mark_rejections,
    sample_rejections,
)
from lisakit.registry import DATASETS, MODELS
from lisakit.structures import ReasonSegDataSample
from lisakit.utils.constants import LM_IGNORE_INDEX as IGN
from lisakit.utils.constants import REJ_TOKEN

SEG, REJ, DOT, RED, PAD = 5, 6, 7, 4, 0


def test_generated_answer_with_rej_and_no_seg_is_a_rejection():
    tokens = torch.tensor([[REJ, DOT, PAD], [SEG, DOT, PAD], [REJ, SEG, DOT], [DOT, PAD, PAD]])
    texts = ['[REJ].', '<SEG>.', '[REJ] <SEG>.', 'There is no such object.']
    assert generated_rejections(tokens, texts, SEG, REJ) == [True, False, False, False]
    # a configured rejection text counts too (case and spaces normalized)
    got = generated_rejections(tokens, texts, SEG, REJ, ['there is  NO such object'])
    assert got == [True, False, False, True]
    assert generated_rejections(tokens, texts, SEG, None) == [False] * 4


def test_choice_is_read_where_the_answer_decides():
    # row 0: answer "<SEG>." from position 3 (read at 2); row 1: "red [REJ]." restating
    # the colour first: read where [REJ] is predicted (2), not the first answer token;
    # row 2: no <SEG> / [REJ] in the answer: its first token (read at 1)
    labels = torch.tensor(
        [[IGN, IGN, IGN, SEG, DOT], [IGN, IGN, RED, REJ, DOT], [IGN, IGN, DOT, IGN, IGN]]
    )
    logits = torch.zeros(3, 5, 8)
    logits[0, 2, REJ] = 1.0
    logits[0, 3, SEG] = 9.0  # later positions do not count
    logits[1, 1, REJ] = 9.0  # the first answer position does not count here
    logits[1, 2, SEG] = 1.0
    logits[2, 1, REJ] = 1.0
    lm = dict(labels=labels, logits=logits)
    assert first_answer_choices(lm, SEG, REJ) == [True, False, True]
    # the supervised-only selection (M, V) gives the same choices
    batch, pos = (labels[:, 1:] != IGN).nonzero(as_tuple=True)
    lm = dict(labels=labels, logits=logits[batch, pos], logits_batch_index=batch)
    assert first_answer_choices(lm, SEG, REJ) == [True, False, True]
    # a sequence without an answer has no choice
    lm = dict(labels=torch.full((1, 5), IGN), logits=logits[:1])
    assert first_answer_choices(lm, SEG, REJ) == [None]


def test_sample_rejects_when_all_its_sequences_do():
    got = sample_rejections([True, True, True, False, None, None], [0, 0, 1, 1, 2, 3], 4)
    assert got == [True, False, False, False]


def test_rejected_sample_has_no_mask():
    with_gt, without = ReasonSegDataSample(), ReasonSegDataSample()
    with_gt.gt_masks = torch.zeros(2, 4, 4, dtype=torch.uint8)
    for ds in (with_gt, without):
        ds.pred_masks = torch.ones(2, 4, 4, dtype=torch.bool)
        ds.pred_iou_scores = torch.ones(2)
    kept = ReasonSegDataSample(pred_masks=torch.ones(1, 4, 4, dtype=torch.bool))
    kept.pred_iou_scores = torch.ones(1)
    mark_rejections([with_gt, without, kept], [True, True, False])
    assert with_gt.pred_rejected and without.pred_rejected and not kept.pred_rejected
    assert with_gt.pred_masks.shape == (2, 4, 4) and not with_gt.pred_masks.any()
    assert without.pred_masks.shape == (0, 4, 4) and without.pred_iou_scores.shape == (0,)
    assert kept.pred_masks.all()


# ----------------------------------------------------------- through the real segmentor
REJ_CONFIG = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny_shapes-multi-rej.py')


@pytest.fixture(scope='module')
def rej_model_and_batch():
    init_default_scope('lisakit')
    cfg = Config.fromfile(REJ_CONFIG)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    model.cfg = cfg
    ds_cfg = copy.deepcopy(cfg.val_dataloader.dataset.to_dict())
    ds_cfg['num_samples'] = 8
    dataset = DATASETS.build(ds_cfg)
    batch = pseudo_collate([dataset[i] for i in (0, 1, 2, 5)])
    kinds = [s.no_target for s in batch['data_samples']]
    assert any(kinds) and not all(kinds)
    return model, batch, dataset


def _predict(model, batch, mode, **generation_cfg):
    model.predict_mode = mode
    model.generation_cfg = dict(max_new_tokens=4, **generation_cfg)
    data = model.data_preprocessor(copy.deepcopy(batch), False)
    with torch.no_grad():
        return model(**data, mode='predict')


def _forcing(tokenizer, text):
    """prefix_allowed_tokens_fn writing ``text`` (then EOS) whatever the model prefers."""
    answer = tokenizer(text, add_special_tokens=False)['input_ids'] + [tokenizer.eos_token_id]
    start = {}

    def force(batch_id, ids):
        first = start.setdefault(batch_id, len(ids))
        return [answer[min(len(ids) - first, len(answer) - 1)]]

    return force


def test_generated_rej_answer_is_a_rejection_without_masks(rej_model_and_batch):
    model, batch, dataset = rej_model_and_batch
    tok = model.backbone.tokenizer
    assert model.rej_token_id == tok.convert_tokens_to_ids(REJ_TOKEN) == len(tok) - 1
    samples = _predict(model, batch, 'generate', prefix_allowed_tokens_fn=_forcing(tok, '[REJ] .'))
    for s in samples:
        assert s.pred_rejected is True and REJ_TOKEN in s.pred_text and s.num_generated_seg == 0
        assert s.pred_masks.shape == s.gt_masks.shape == (1, 64, 64)  # one empty per target
        assert not s.pred_masks.any()
    metric = GRefCOCOMetric()
    metric.process({}, [s.to_dict() for s in samples])
    scores = metric.compute_metrics(metric.results)
    assert scores['N-acc'] == 1.0 and scores['T-acc'] == 0.0

    samples = _predict(model, batch, 'generate', prefix_allowed_tokens_fn=_forcing(tok, '<SEG> .'))
    assert all(s.pred_rejected is False and s.num_generated_seg == 1 for s in samples)

    # inference (no targets): no mask at all, and the result says rejected
    model.generation_cfg = dict(max_new_tokens=4, prefix_allowed_tokens_fn=_forcing(tok, '[REJ]'))
    image = dataset.get_data_info(0)['img']
    sample = inference_model(model, image, 'Segment all the red shapes.')
    assert sample.pred_rejected is True and sample.pred_masks.shape == (0, 64, 64)


def test_teacher_forced_rejection_is_the_models_first_token_choice(rej_model_and_batch):
    model, batch, _ = rej_model_and_batch
    seg, rej = model.backbone.seg_token_id, model.rej_token_id
    first = [s.pred_rejected for s in _predict(model, batch, 'teacher_forced')]
    head = model.backbone.hf_model.lm_head.weight
    with torch.no_grad():
        head[[seg, rej]] = head[[rej, seg]]  # swap the two rows: every choice flips
    try:
        samples = _predict(model, batch, 'teacher_forced')
    finally:
        with torch.no_grad():
            head[[seg, rej]] = head[[rej, seg]]
    assert [s.pred_rejected for s in samples] == [not f for f in first]
    for s in samples:  # a rejected sample's mask is emptied; the others keep theirs
        assert s.pred_masks.shape == (1, 64, 64)
        assert not s.pred_masks.any() or not s.pred_rejected


def _effective_rows(backbone):
    """(V, D) input-embedding and LM-head matrices as the model uses them (peft's trainable
    token deltas included)."""
    hf = backbone.hf_model
    vocab = hf.config.text_config.vocab_size
    with torch.no_grad():
        emb = hf.get_input_embeddings()(torch.arange(vocab)[None])[0]
        eye = torch.eye(hf.config.text_config.hidden_size)
        head = hf.get_output_embeddings()(eye[None])[0].T
    return emb.clone(), head.clone()


def test_seg_rows_train_the_rej_rows_and_nothing_else(tiny_cfg):
    cfg = copy.deepcopy(tiny_cfg.model.backbone.to_dict())
    cfg['processor']['rej_token'] = REJ_TOKEN
    cfg['trainable'] = dict(language_model='frozen', embeddings='seg_rows')
    torch.manual_seed(0)
    backbone = MODELS.build(cfg).train()
    seg, rej = backbone.seg_token_id, backbone.processor.rej_token_id
    assert rej == seg + 1
    frozen = {
        n: t.detach().clone()
        for n, t in backbone.state_dict().items()
        if 'trainable_tokens_delta' not in n
    }
    emb0, head0 = _effective_rows(backbone)
    tok = backbone.tokenizer
    texts = ['<image>\nsegment all the red shapes . [REJ] .', '<image>\nthe blue shape . <SEG> .']
    ids = [
        torch.tensor([tok.bos_token_id] + tok(t, add_special_tokens=False)['input_ids'])
        for t in texts
    ]
    assert rej in ids[0] and seg in ids[1]
    input_ids = torch.nn.utils.rnn.pad_sequence(
        ids, batch_first=True, padding_value=tok.pad_token_id
    )
    mask = (input_ids != tok.pad_token_id).long()
    size = backbone.hf_model.config.vision_config.image_size
    vision = dict(pixel_values=torch.randn(2, 3, size, size))
    opt = torch.optim.AdamW([p for p in backbone.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        out = backbone(input_ids, mask, vision)
        loss = out['hidden_states'].pow(2).mean() - out['logits'][..., [seg, rej]].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for name, before in frozen.items():
        assert torch.equal(before, backbone.state_dict()[name]), name  # bit-identical
    emb1, head1 = _effective_rows(backbone)
    others = torch.ones(emb0.shape[0], dtype=torch.bool)
    others[[seg, rej]] = False
    assert torch.equal(emb0[others], emb1[others]) and torch.equal(head0[others], head1[others])
    for row in (seg, rej):
        assert not torch.equal(emb0[row], emb1[row]) and not torch.equal(head0[row], head1[row])
