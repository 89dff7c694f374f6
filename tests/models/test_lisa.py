"""Build, forward and backward every model component of the tiny LISA."""

import pytest
import torch
from mmengine.dataset import pseudo_collate

from lisakit.models.segmentors.checks import head_with_encoder_weights
from lisakit.registry import DATASETS, MODELS


def _batch(make_cfg, model, split='train', n=4):
    dataset = DATASETS.build(make_cfg(split, n))
    return model.data_preprocessor(pseudo_collate([dataset[i] for i in range(n)]), True)


@pytest.fixture(scope='module')
def model_and_batch(tiny_cfg, small_dataset_cfg):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg.model)
    return model, _batch(small_dataset_cfg, model)


def test_loss_forward_backward(model_and_batch):
    model, data = model_and_batch
    model.train()
    losses = model(**data, mode='loss')
    assert {'loss_ce', 'loss_bce', 'loss_dice', 'gIoU', 'cIoU'} <= set(losses)
    total = sum(v for k, v in losses.items() if k.startswith('loss_'))
    assert torch.isfinite(total)
    total.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    # every trained component receives a finite, non-zero gradient
    for part in ('neck.', 'head.mask_decoder.transformer', 'backbone.llava'):
        got = [g for n, g in grads.items() if n.startswith(part) and g is not None]
        assert got, part
        assert all(torch.isfinite(g).all() for g in got)
        assert any(g.abs().sum() > 0 for g in got), part
    model.zero_grad()


def test_supervised_logits_only_gives_the_same_losses_and_grads(tiny_cfg, small_dataset_cfg):
    results = []
    for only in (False, True):
        torch.manual_seed(0)
        cfg = tiny_cfg.model.to_dict()
        cfg['backbone'] = dict(cfg['backbone'], supervised_logits_only=only)
        model = MODELS.build(cfg).train()
        data = _batch(small_dataset_cfg, model)
        losses = model(**data, mode='loss')
        losses['loss_ce'].backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        model.eval()
        with torch.no_grad():
            per_sample = [s.losses['loss_ce'] for s in model(**data, mode='predict')]
        results.append((losses['loss_ce'].detach(), grads, per_sample))
    (ce_a, grads_a, val_a), (ce_b, grads_b, val_b) = results
    torch.testing.assert_close(ce_a, ce_b)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name, grad in grads_a.items():
        torch.testing.assert_close(grad, grads_b[name], msg=name)
    assert val_a == pytest.approx(val_b, rel=1e-5)


def test_frozen_parts_have_no_grad(model_and_batch):
    model, _ = model_and_batch
    assert not any(p.requires_grad for p in model.sam_encoder.parameters())
    assert not any(p.requires_grad for p in model.head.prompt_encoder.parameters())
    assert not any(p.requires_grad for p in model.backbone.hf_model.model.vision_tower.parameters())


def test_predict_fills_masks_and_losses(model_and_batch):
    model, data = model_and_batch
    model.eval()
    with torch.no_grad():
        samples = model(**data, mode='predict')
    for s in samples:
        assert s.pred_masks.dtype == torch.bool
        assert s.pred_masks.shape == s.gt_masks.shape
        assert set(s.losses) == {'loss_ce', 'loss_bce', 'loss_dice'}


def test_tensor_mode_returns_logits_at_original_size(model_and_batch):
    model, data = model_and_batch
    with torch.no_grad():
        logits = model(**data, mode='tensor')
    assert [tuple(x.shape) for x in logits] == [
        tuple(s.gt_masks.shape) for s in data['data_samples']
    ]


def test_seg_hidden_state_is_the_one_predicting_seg(model_and_batch):
    model, data = model_and_batch
    backbone = model.backbone
    with torch.no_grad():
        out = backbone(
            data['inputs']['input_ids'],
            data['inputs']['attention_mask'],
            data['inputs']['vision'],
        )
    ids = out['input_ids']
    for b, embeds in enumerate(out['seg_embeds']):
        (pos,) = torch.nonzero(ids[b] == backbone.seg_token_id, as_tuple=True)
        assert torch.equal(embeds, out['hidden_states'][b, pos - 1])


def test_image_tokens_expand_to_visual_features(model_and_batch):
    model, data = model_and_batch
    backbone = model.backbone
    ids = data['inputs']['input_ids']
    new_ids, mask, labels = backbone.expand_image_tokens(
        ids, data['inputs']['attention_mask'], data['inputs']['labels']
    )
    n = backbone.num_image_tokens
    assert new_ids.shape[1] == ids.shape[1] + n - 1
    assert ((new_ids == backbone.image_token_id).sum(1) == n).all()
    assert (labels[new_ids == backbone.image_token_id] == -100).all()
    # text tokens keep their order around the image block
    for b in range(ids.shape[0]):
        keep = new_ids[b][new_ids[b] != backbone.image_token_id]
        assert torch.equal(keep, ids[b][ids[b] != backbone.image_token_id])


def test_missing_image_token_is_an_error(model_and_batch):
    model, data = model_and_batch
    ids = data['inputs']['input_ids'].clone()
    ids[ids == model.backbone.image_token_id] = 0
    with pytest.raises(ValueError, match='exactly one'):
        model.backbone.expand_image_tokens(ids, data['inputs']['attention_mask'])


def test_seg_count_mismatch_names_the_sample(model_and_batch):
    model, data = model_and_batch
    samples = [s.clone() for s in data['data_samples']]
    samples[0].gt_masks = torch.cat([samples[0].gt_masks] * 2)
    with pytest.raises(ValueError, match='one <SEG> per mask'):
        model(data['inputs'], samples, mode='loss')


def test_unknown_mode(model_and_batch):
    model, data = model_and_batch
    with pytest.raises(ValueError, match='Invalid mode'):
        model(**data, mode='nope')


def test_neck_head_dim_mismatch_names_keys(tiny_model_cfg):
    tiny_model_cfg['neck']['out_channels'] = 32
    with pytest.raises(ValueError, match=r'model.neck.out_channels is 32 .*model.head.embed_dim'):
        MODELS.build(tiny_model_cfg)


def test_encoder_head_size_mismatch_names_keys(tiny_model_cfg):
    tiny_model_cfg['head']['image_embedding_size'] = 8
    with pytest.raises(ValueError, match='model.head.image_embedding_size'):
        MODELS.build(tiny_model_cfg)


def test_unknown_component_type(tiny_model_cfg):
    tiny_model_cfg['neck']['type'] = 'NoSuchNeck'
    with pytest.raises(KeyError, match='NoSuchNeck'):
        MODELS.build(tiny_model_cfg)


def test_unknown_sam_arch(tiny_model_cfg):
    tiny_model_cfg['sam_encoder']['arch'] = 'vit_x'
    with pytest.raises(ValueError, match='vit_x'):
        MODELS.build(tiny_model_cfg)


def test_backbone_needs_weights_source(tiny_model_cfg):
    backbone = dict(tiny_model_cfg['backbone'], llava_config=None)
    with pytest.raises(ValueError, match='exactly one of `pretrained`'):
        MODELS.build(backbone)
    backbone['pretrained'] = '/no/such/llava'
    with pytest.raises(FileNotFoundError, match='/no/such/llava'):
        MODELS.build(backbone)


def test_missing_component_names_key_and_example(tiny_model_cfg):
    del tiny_model_cfg['neck']
    with pytest.raises(ValueError, match=r"model.neck is missing.*type='SegProjector'"):
        MODELS.build(tiny_model_cfg)


def test_old_configs_mask_losses_move_into_the_head(tiny_model_cfg):
    """``model.loss_bce`` / ``model.loss_dice`` (older configs) become ``head.loss_decode``."""
    head = tiny_model_cfg['head']
    del head['loss_decode']
    tiny_model_cfg.update(
        loss_bce=dict(type='MaskBCELoss', loss_weight=3.0),
        loss_dice=dict(type='DiceLoss', loss_weight=0.25),
    )
    losses = MODELS.build(tiny_model_cfg).head.loss_decode
    assert [(type(x).__name__, x.loss_name, x.loss_weight) for x in losses] == [
        ('MaskBCELoss', 'loss_bce', 3.0),
        ('DiceLoss', 'loss_dice', 0.25),
    ]
    tiny_model_cfg['head'] = dict(head, loss_decode=dict(type='DiceLoss'))
    with pytest.raises(ValueError, match='model.head.loss_decode only'):
        MODELS.build(tiny_model_cfg)


def test_head_takes_the_sam_weights_of_the_encoder(tiny_model_cfg, tmp_path):
    """One SAM path: with only ``sam_encoder.checkpoint`` set, the head loads from it too."""
    torch.manual_seed(1)
    encoder = MODELS.build(tiny_model_cfg['sam_encoder'])
    head = MODELS.build(tiny_model_cfg['head'])
    state = {f'image_encoder.{k}': v for k, v in encoder.encoder.state_dict().items()}
    for part in ('prompt_encoder', 'mask_decoder'):
        state.update({f'{part}.{k}': v for k, v in getattr(head, part).state_dict().items()})
    path = str(tmp_path / 'sam_tiny.pth')
    torch.save(state, path)
    tiny_model_cfg['sam_encoder']['checkpoint'] = path
    assert 'checkpoint' not in tiny_model_cfg['head']
    torch.manual_seed(2)  # different random weights: only the file makes them equal
    model = MODELS.build(tiny_model_cfg)
    for name, value in model.head.state_dict().items():
        if name.split('.')[0] in ('prompt_encoder', 'mask_decoder'):
            assert torch.equal(value, state[name]), name
    # an explicit head path wins; SAM 2 heads take the encoder's folder the same way
    sam = dict(type='SAMImageEncoder', checkpoint=path)
    assert head_with_encoder_weights(dict(type='SAMHead', checkpoint='a.pth'), sam) == dict(
        type='SAMHead', checkpoint='a.pth'
    )
    sam2 = dict(type='SAM2ImageEncoder', pretrained='sam2/')
    assert head_with_encoder_weights(dict(type='SAM2Head'), sam2)['pretrained'] == 'sam2/'
    assert 'pretrained' not in head_with_encoder_weights(
        dict(type='SAM2Head', sam2_config={}), sam2
    )


def test_head_loss_names_must_be_unique(tiny_model_cfg):
    tiny_model_cfg['head']['loss_decode'] = [dict(type='DiceLoss'), dict(type='DiceLoss')]
    with pytest.raises(ValueError, match='loss_name must be unique'):
        MODELS.build(tiny_model_cfg)


def test_models_do_not_import_evaluation():
    """Training IoU comes from lisakit.utils.mask_iou: models never import evaluation."""
    import ast
    import pathlib

    import lisakit.models

    root = pathlib.Path(lisakit.models.__file__).parent
    for path in root.rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith('lisakit.evaluation'), path
