"""SAM 2 head: builds (config or local HF folder), trains only its intended parts, keeps
lean checkpoints and resumes exactly (tiny llava + SAM 2 on the shapes data)."""

import copy
import os.path as osp

import pytest
import torch
from lean_resume import check_lean_exact_resume
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from tool_runner import REPO
from transformers import Sam2Config, Sam2Model

from lisakit.registry import DATASETS, MODELS

SAM2_DEMO = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny_sam2_shapes.py')
#: Parts the tiny demo trains: the (tiny, full) LLM, the neck and SAM 2's mask decoder.
TRAINED = ('backbone.llava.model.language_model.', 'backbone.llava.lm_head.', 'neck.')
FROZEN = ('sam_encoder.', 'head.prompt_encoder.', 'head.shared_image_embedding.')


@pytest.fixture(scope='module')
def cfg():
    init_default_scope('lisakit')
    return Config.fromfile(SAM2_DEMO)


def _batch(cfg, model, n=4):
    ds = copy.deepcopy(cfg.train_dataloader.dataset.to_dict())
    ds['num_samples'] = n
    dataset = DATASETS.build(ds)
    return model.data_preprocessor(pseudo_collate([dataset[i] for i in range(n)]), True)


def test_builds_from_a_local_hugging_face_folder(cfg, tmp_path):
    torch.manual_seed(1)
    reference = Sam2Model(Sam2Config(**cfg.sam2_config.to_dict()))
    reference.save_pretrained(tmp_path)
    encoder = MODELS.build(dict(type='SAM2ImageEncoder', pretrained=str(tmp_path)))
    head = MODELS.build(dict(type='SAM2Head', pretrained=str(tmp_path)))
    expected = reference.state_dict()
    for prefix, module in (
        ('vision_encoder.', encoder.vision_encoder),
        ('mask_decoder.', head.mask_decoder),
        ('prompt_encoder.', head.prompt_encoder),
    ):
        for key, value in module.state_dict().items():
            assert torch.equal(value, expected[prefix + key]), prefix + key
    images = torch.randn(2, 3, encoder.img_size, encoder.img_size)
    feats = encoder(images)
    assert feats['image_embeddings'].shape == (2, 64, 8, 8)
    assert feats['feat_s0'].shape == (2, 64, 32, 32) and feats['feat_s1'].shape == (2, 64, 16, 16)
    masks, ious = head(feats, [torch.randn(3, 64), torch.randn(0, 64)])
    assert [m.shape for m in masks] == [(3, 32, 32), (0, 32, 32)] and ious[0].shape == (3,)
    with pytest.raises(FileNotFoundError, match='config.json'):
        MODELS.build(dict(type='SAM2Head', pretrained=str(tmp_path / 'missing')))
    with pytest.raises(ValueError, match='exactly one'):
        MODELS.build(dict(type='SAM2ImageEncoder'))


def test_trains_only_the_intended_parts(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith(FROZEN) for n in trainable)
    assert any(n.startswith('head.mask_decoder.') for n in trainable)
    assert all(n.startswith((*TRAINED, 'head.mask_decoder.')) for n in trainable), trainable
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    data = _batch(cfg, model)
    for _ in range(3):
        losses = model(**data, mode='loss')
        optimizer.zero_grad()
        sum(v for k, v in losses.items() if k.startswith('loss_')).backward()
        optimizer.step()
    after = model.state_dict()
    names = dict(model.named_parameters())
    for key, value in before.items():
        if key not in names or not names[key].requires_grad:
            assert torch.equal(value, after[key]), f'frozen {key} changed'
    changed = [k for k in trainable if not torch.equal(before[k], after[k])]
    assert any(k.startswith('head.mask_decoder.transformer.') for k in changed)
    assert any(k.startswith('neck.') for k in changed)


def test_text_only_samples_get_zero_features(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    images = torch.randn(3, 3, 64, 64)
    feats = model._embed_images(images, [1, 0, 2])
    alone = model.sam_encoder(images[[0, 2]])
    for key, value in feats.items():
        assert torch.equal(value[[0, 2]], alone[key]) and not value[1].any()
    assert all(not v.any() for v in model._embed_images(images, [0, 0, 0]).values())


@pytest.mark.slow
def test_lean_checkpoint_and_exact_resume(tmp_path):
    state = check_lean_exact_resume(SAM2_DEMO, tmp_path)
    assert not any(k.startswith(FROZEN) for k in state)
    assert any(k.startswith('head.mask_decoder.') for k in state)


def test_7b_sam2_config_swaps_only_the_mask_parts():
    """The SAM 2.1-L base differs from the SAM ViT-H one only in the encoder and the head."""
    base = osp.join(REPO, 'configs', '_base_', 'models')
    sam = Config.fromfile(osp.join(base, 'lisa_llava-1.5-7b-qlora_sam-vit-h.py')).model
    sam2 = Config.fromfile(osp.join(base, 'lisa_llava-1.5-7b-qlora_sam2.1-hiera-l.py')).model
    assert (sam2.sam_encoder.type, sam2.head.type) == ('SAM2ImageEncoder', 'SAM2Head')
    # one SAM 2 path: the head takes the encoder's folder (head_with_encoder_weights)
    assert sam2.sam_encoder.pretrained and 'pretrained' not in sam2.head
    for key in set(sam) - {'sam_encoder', 'head'}:
        assert sam2[key] == sam[key], key


def test_disk_cache_returns_the_computed_features(cfg, tmp_path):
    torch.manual_seed(0)
    sam2_config = cfg.sam2_config.to_dict()
    plain = MODELS.build(dict(type='SAM2ImageEncoder', sam2_config=sam2_config))
    cached = MODELS.build(
        dict(type='SAM2ImageEncoder', sam2_config=sam2_config, cache=dict(dir=str(tmp_path)))
    )
    cached.load_state_dict(plain.state_dict())
    images = torch.randn(2, 3, 64, 64)
    expected = plain(images)
    for _ in range(2):  # computed and written, then read back
        got = cached(images)
        for key, value in expected.items():
            assert torch.equal(got[key], value), key
    assert (cached.cache.misses, cached.cache.hits) == (2, 2)
