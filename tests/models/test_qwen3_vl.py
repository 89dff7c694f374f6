"""Qwen3-VL backbone (a subclass of the Qwen2.5-VL one) on tiny random models: 4-bit LLM,
LoRA + <SEG> rows through the segmentor, batched == batch-1 generation, Qwen3-VL's
processor settings. The helpers are test_qwen2_5_vl's (same patch / merge sizes)."""

import copy
import os.path as osp

import bitsandbytes as bnb
import pytest
import test_qwen2_5_vl as qwen2_5
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from test_qwen2_5_vl import PATCH, QLORA, _inputs
from test_qwen2_5_vl import TINY as QWEN2_5_TINY
from tool_runner import REPO

from lisakit.models.backbones import Qwen2_5_VLBackbone, Qwen3VLBackbone
from lisakit.models.processors.qwen3_vl_processor import QWEN3_IMAGE_MEAN
from lisakit.registry import MODELS

#: test_qwen2_5_vl's tiny model as Qwen3-VL: a 4 x 4 grid of learned ViT position
#: embeddings (interpolated to each image's grid), no window attention, DeepStack from ViT
#: block 0 into LLM layer 0, a Qwen3 LLM (head dim 16: 8 frequencies over (t, h, w)).
TINY = copy.deepcopy(QWEN2_5_TINY)
TINY['type'] = 'Qwen3VLBackbone'
for _key in ('window_size', 'fullatt_block_indexes'):
    del TINY['qwen_config']['vision_config'][_key]
TINY['qwen_config']['vision_config'].update(
    num_position_embeddings=16, deepstack_visual_indexes=[0]
)
TINY['qwen_config']['text_config'].update(
    head_dim=16,
    rope_parameters=dict(rope_type='default', rope_theta=10000.0, mrope_section=[4, 2, 2]),
)
QWEN3_DEMO = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny-qwen3_shapes.py')


def _build(**overrides):
    torch.manual_seed(0)
    return MODELS.build(dict(copy.deepcopy(TINY), **overrides))


def test_nf4_quantizes_only_the_llm_and_the_processor_is_qwen3s():
    backbone = _build(**QLORA).train()
    assert isinstance(backbone, Qwen2_5_VLBackbone)
    hf = backbone.hf_model
    assert type(hf).__name__ == 'Qwen3VLForConditionalGeneration'
    quantized = [n for n, m in backbone.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(quantized) == backbone.num_quantized_layers == 2 * 7  # q k v o gate up down
    assert all('.model.language_model.layers.' in n for n in quantized)
    assert not isinstance(hf.lm_head, bnb.nn.Linear4bit)
    out = backbone(*_inputs(backbone))
    assert [s.shape for s in out['seg_embeds']] == [(1, backbone.hidden_size)] * 2
    processor = backbone.processor
    assert type(processor).__name__ == 'Qwen3VLProcessor' and processor.system is None
    assert processor.image_processor.image_mean == list(QWEN3_IMAGE_MEAN)
    assert processor.image_processor.patch_size == PATCH
    # Qwen3-VL's own vision defaults: patch 16
    default = Qwen3VLBackbone._build_processor(TINY['processor'], None, None, {})
    assert default.image_processor.patch_size == 16


def test_projector_is_the_merger_and_the_deepstack_mergers():
    backbone = _build(trainable=dict(projector=True))
    trainable = {n.split('.')[3] for n, p in backbone.named_parameters() if p.requires_grad}
    assert trainable == {'merger', 'deepstack_merger_list'}


@pytest.fixture(scope='module')
def demo_cfg():
    init_default_scope('lisakit')
    return Config.fromfile(QWEN3_DEMO)


def test_demo_swaps_only_the_backbone(demo_cfg):
    shapes = Config.fromfile(osp.join(REPO, 'configs', 'lisa', 'lisa_tiny_shapes.py'))
    for key in set(shapes.model) - {'backbone'}:
        assert demo_cfg.model[key] == shapes.model[key], key
    assert demo_cfg.model.backbone.type == 'Qwen3VLBackbone'


def test_qlora_trains_only_lora_and_seg_rows_through_the_segmentor(demo_cfg):
    """test_qwen2_5_vl's check on the Qwen3-VL demo: 4-bit LLM, 3 mmengine train steps,
    frozen tensors bit-identical, only the <SEG> embedding row changed."""
    qwen2_5.test_qlora_trains_only_lora_and_seg_rows_through_the_segmentor(demo_cfg)


def test_batched_generate_equals_batch_1_through_the_segmentor(demo_cfg):
    """test_qwen2_5_vl's check on the Qwen3-VL demo (DeepStack at the image tokens of a
    left-padded batch): each sample's batch-1 ids, <SEG> states and masks."""
    qwen2_5.test_batched_generate_equals_batch_1_through_the_segmentor(demo_cfg)
