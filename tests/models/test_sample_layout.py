"""LISA's sample layout: several one-turn sequences per image share its SAM embedding.

Hand-built batches: 2 images, the first with 3 sequences, the second with 2
(``seq_to_sample = [0, 0, 0, 1, 1]``, LISA's ``offset = [0, 3, 5]``). Each result must
equal running every (image, sequence) pair alone, with the SAM encoder run once per image.
"""

import pytest
import torch
from mmengine.dataset import pseudo_collate

from lisakit.models.segmentors.grouping import match_to_targets
from lisakit.registry import DATASETS, MODELS

GROUPS = ([0, 1, 2], [3, 4])  # sequences (dataset items) of each image
SEQ_TO_SAMPLE = [0, 0, 0, 1, 1]


@pytest.fixture(scope='module')
def model_and_items(tiny_cfg, small_dataset_cfg):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg.model)
    dataset = DATASETS.build(small_dataset_cfg('train', len(SEQ_TO_SAMPLE)))
    return model, [dataset[i] for i in range(len(SEQ_TO_SAMPLE))]


def _grouped(model, items):
    """One batch: the sequences of every item, the image of each group's first item, the
    group's target masks concatenated in sequence order."""
    data = model.data_preprocessor(pseudo_collate(items), True)
    inputs, samples = data['inputs'], data['data_samples']
    firsts = [g[0] for g in GROUPS]
    inputs['sam_images'] = inputs['sam_images'][firsts]  # (B, 3, S, S)
    first_of = [g[0] for g in GROUPS for _ in g]  # each sequence sees its group's image
    inputs['vision'] = dict(pixel_values=inputs['vision']['pixel_values'][first_of])
    inputs['seq_to_sample'] = torch.tensor(SEQ_TO_SAMPLE)
    grouped = []
    for group in GROUPS:
        sample = samples[group[0]].clone()
        sample.gt_masks = torch.cat([samples[j].gt_masks for j in group])
        grouped.append(sample)
    return dict(inputs=inputs, data_samples=grouped)


def _alone(model, items, j):
    """Sequence j alone, with its group's image."""
    image = items[next(g[0] for g in GROUPS if j in g)]
    seq = items[j]
    inputs = dict(img=image['inputs']['img'], sam_image=image['inputs']['sam_image'])
    sample = image['data_samples'].clone()
    sample.set_metainfo(dict(conversations=seq['data_samples'].conversations))
    sample.gt_masks = seq['data_samples'].gt_masks
    return model.data_preprocessor(pseudo_collate([dict(inputs=inputs, data_samples=sample)]), True)


def _count_sam_images(model):
    seen = []
    handle = model.sam_encoder.register_forward_hook(lambda m, args, out: seen.append(len(out)))
    return seen, handle


def test_sam_encoder_runs_once_per_image(model_and_items):
    model, items = model_and_items
    data = _grouped(model, items)
    seen, handle = _count_sam_images(model)
    try:
        model.train()
        model(**data, mode='loss')
        model.eval()
        with torch.no_grad():
            model(**_grouped(model, items), mode='predict')
    finally:
        handle.remove()
    assert seen == [len(GROUPS), len(GROUPS)]  # 2 images per pass, not 5 sequences


def test_masks_equal_each_query_alone(model_and_items):
    model, items = model_and_items
    model.eval()
    with torch.no_grad():
        grouped = model(**_grouped(model, items), mode='tensor')  # B x (n_i, H, W)
        alone = [model(**_alone(model, items, j), mode='tensor')[0] for j in range(5)]
    for i, group in enumerate(GROUPS):
        expected = torch.cat([alone[j] for j in group])
        assert grouped[i].shape == expected.shape == (len(group), 64, 64)
        torch.testing.assert_close(grouped[i], expected, atol=1e-4, rtol=1e-4)


def _supervised_tokens(data):
    return int((data['inputs']['labels'][:, 1:] != -100).sum())


def test_loss_is_lisas_mean_over_sequences_and_gradients_flow(model_and_items):
    model, items = model_and_items
    model.train()
    torch.manual_seed(0)  # LoRA-free tiny model: dropout-free, so train mode is deterministic
    alone = []
    with torch.no_grad():
        for j in range(5):
            data = _alone(model, items, j)
            alone.append((model(**data, mode='loss'), _supervised_tokens(data)))
    losses = model(**_grouped(model, items), mode='loss')
    tokens = sum(t for _, t in alone)
    ce = sum(float(loss['loss_ce']) * t for loss, t in alone) / tokens  # token mean over all
    assert float(losses['loss_ce']) == pytest.approx(ce, rel=1e-4)
    for key in ('loss_bce', 'loss_dice'):  # one mask per sequence: mean over the 5 masks
        expected = sum(float(loss[key]) for loss, _ in alone) / len(alone)
        assert float(losses[key]) == pytest.approx(expected, rel=1e-4)
    sum(v for k, v in losses.items() if k.startswith('loss_')).backward()
    for part in ('neck.', 'head.mask_decoder.transformer', 'backbone.llava'):
        grads = [
            p.grad for n, p in model.named_parameters() if n.startswith(part) and p.grad is not None
        ]
        assert grads and all(torch.isfinite(g).all() for g in grads), part
        assert any(g.abs().sum() > 0 for g in grads), part
    model.zero_grad()


def test_teacher_forced_predict_per_sample(model_and_items):
    model, items = model_and_items
    model.eval()
    with torch.no_grad():
        samples = model(**_grouped(model, items), mode='predict')
        alone = [model(**_alone(model, items, j), mode='predict')[0] for j in range(5)]
    for i, group in enumerate(GROUPS):
        assert samples[i].pred_masks.shape == samples[i].gt_masks.shape
        assert torch.equal(samples[i].pred_masks, torch.cat([alone[j].pred_masks for j in group]))
        ce = sum(alone[j].losses['loss_ce'] for j in group) / len(group)  # mean of sequences
        assert samples[i].losses['loss_ce'] == pytest.approx(ce, rel=1e-4)


def test_generate_answers_each_sequence(model_and_items):
    model, items = model_and_items
    model.eval()
    model.predict_mode, model.generation_cfg = 'generate', dict(max_new_tokens=4)
    try:
        with torch.no_grad():
            samples = model(**_grouped(model, items), mode='predict')
            alone = [model(**_alone(model, items, j), mode='predict')[0] for j in range(5)]
    finally:
        model.predict_mode = 'teacher_forced'
    for i, group in enumerate(GROUPS):
        assert samples[i].pred_text == '\n'.join(alone[j].pred_text for j in group)
        assert samples[i].num_generated_seg == sum(alone[j].num_generated_seg for j in group)
        assert torch.equal(samples[i].pred_masks, torch.cat([alone[j].pred_masks for j in group]))
        assert samples[i].pred_masks.shape == samples[i].gt_masks.shape


@pytest.mark.parametrize(
    'index', [[0, 0, 1, 0, 1], [0, 0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1, 2], [-1, 0, 0, 1, 1]]
)
def test_bad_seq_to_sample_names_the_key(model_and_items, index):
    model, items = model_and_items
    data = _grouped(model, items)
    data['inputs']['seq_to_sample'] = torch.tensor(index)
    with pytest.raises(ValueError, match='seq_to_sample'):
        model(**data, mode='tensor')


def test_several_sequences_need_seq_to_sample(model_and_items):
    model, items = model_and_items
    data = _grouped(model, items)
    del data['inputs']['seq_to_sample']
    with pytest.raises(ValueError, match='seq_to_sample'):
        model(**data, mode='tensor')


def test_generated_masks_stay_with_their_query():
    """A query that generated no <SEG> gets an empty mask; the next query's mask is not
    shifted onto its target."""
    none, one = torch.zeros((0, 2, 2), dtype=torch.bool), torch.ones((1, 2, 2), dtype=torch.bool)
    matched = match_to_targets([none, one], wanted=[1, 1], total=2)
    assert not matched[0].any() and matched[1].all()
    extra = match_to_targets([torch.cat([one, one]), one], wanted=[1, 1], total=2)
    assert extra.shape == (2, 2, 2) and extra.all()  # the first query's extra mask dropped
    # given answers that do not fit the targets: the whole sample is cut / padded
    assert match_to_targets([one, one, one], wanted=[0, 0, 0], total=2).shape == (2, 2, 2)
