"""Qwen2.5-VL backbone on a tiny random model: 4-bit LLM, LoRA, <SEG> rows, <SEG> states,
alone and through the LISA segmentor with its data path (processor in the data preprocessor)."""

import copy
import os.path as osp

import bitsandbytes as bnb
import pytest
import torch
from lean_resume import check_lean_exact_resume
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from tool_runner import REPO

from lisakit.models.backbones.qwen2_5_vl import QWEN_VISION_END, QWEN_VISION_START
from lisakit.registry import DATASETS, MODELS

PATCH, MERGE, TEMPORAL = 4, 2, 2
#: Smaller than the demo's backbone (configs/_base_/models/tiny_qwen2.5-vl_backbone.py) and
#: on purpose different: grouped-query attention (2 KV heads) as the 7B's, and 16 px windows,
#: so a 16 x 32 px image spans several ViT attention windows.
TINY = dict(
    type='Qwen2_5_VLBackbone',
    processor=dict(tokenizer=dict(type='WordTokenizer')),
    qwen_config=dict(
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=64,
            patch_size=PATCH,
            spatial_merge_size=MERGE,
            temporal_patch_size=TEMPORAL,
            window_size=16,
            fullatt_block_indexes=[1],
        ),
        text_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            rope_parameters=dict(rope_type='default', rope_theta=10000.0, mrope_section=[2, 3, 3]),
        ),
    ),
)
QLORA = dict(
    trainable=dict(language_model='lora', embeddings='seg_rows'),
    lora=dict(r=4, alpha=8, dropout=0.0),
    quantization=dict(bits=4, quant_type='nf4', double_quant=True, compute_dtype='float32'),
)


def _build(**overrides):
    cfg = dict(copy.deepcopy(TINY), **overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


@pytest.fixture(scope='module')
def qlora():
    return _build(**QLORA).train()


def _inputs(backbone, grids=((1, 4, 4), (1, 4, 8))):
    """Two samples with images of different sizes (dynamic resolution), right padded."""
    tok = backbone.tokenizer
    texts = ['segment the red shape', 'where is the blue shape ? it is']
    rows = []
    for (t, h, w), text in zip(grids, texts):
        n_image = t * h * w // MERGE**2
        vision = [QWEN_VISION_START] + ['<|image_pad|>'] * n_image + [QWEN_VISION_END]
        ids = [tok.bos_token_id] + tok.convert_tokens_to_ids(vision)
        ids += tok(text, add_special_tokens=False)['input_ids'] + [backbone.seg_token_id]
        rows.append(torch.tensor(ids + tok('.', add_special_tokens=False)['input_ids']))
    input_ids = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
    lengths = torch.tensor([len(r) for r in rows])
    mask = (torch.arange(input_ids.shape[1])[None] < lengths[:, None]).long()
    grid = torch.tensor(grids)
    pixels = torch.randn(int(grid.prod(dim=1).sum()), 3 * TEMPORAL * PATCH**2)
    return input_ids, mask, dict(pixel_values=pixels, image_grid_thw=grid)


def test_only_the_llm_is_quantized(qlora):
    quantized = [
        n
        for n, m in qlora.named_modules()
        if isinstance(m, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt))
    ]
    assert len(quantized) == qlora.num_quantized_layers == 2 * 7  # q k v o gate up down
    assert all('.model.language_model.layers.' in n for n in quantized)
    hf = qlora.hf_model
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in hf.model.visual.modules())
    assert not isinstance(hf.lm_head, bnb.nn.Linear4bit)


def test_forward_returns_seg_states(qlora):
    input_ids, mask, vision = _inputs(qlora)
    out = qlora(input_ids, mask, vision)
    batch, length = input_ids.shape
    assert out['hidden_states'].shape == (batch, length, qlora.hidden_size)
    assert out['logits'].shape == (batch, length, len(qlora.tokenizer))
    assert [s.shape for s in out['seg_embeds']] == [(1, qlora.hidden_size)] * 2
    # the state before <SEG> predicts it
    pos = (input_ids[0] == qlora.seg_token_id).nonzero()[0, 0]
    assert torch.equal(out['seg_embeds'][0][0], out['hidden_states'][0, pos - 1])
    # 3D (M-RoPE) positions were used: the image grids shift the text positions
    assert qlora.hf_model.model.rope_deltas.ne(0).all()


def test_trains_lora_and_seg_rows_only(qlora):
    trainable = {n for n, p in qlora.named_parameters() if p.requires_grad}
    assert trainable and all('lora_' in n or 'trainable_tokens' in n for n in trainable)
    assert all('language_model' in n for n in trainable if 'lora_' in n)
    embed = qlora.hf_model.get_input_embeddings()
    all_ids = torch.arange(len(qlora.tokenizer))
    rows_before = embed(all_ids).detach().clone()
    adapters = ('lora_', 'trainable_tokens')
    state = qlora.state_dict()
    frozen = {k: v.clone() for k, v in state.items() if not any(a in k for a in adapters)}
    lora_before = {k: v.clone() for k, v in state.items() if 'lora_B' in k}
    opt = torch.optim.AdamW([p for p in qlora.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        out = qlora(*_inputs(qlora))
        loss = torch.cat(out['seg_embeds']).pow(2).mean() + out['logits'].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = qlora.state_dict()
    for key, value in frozen.items():
        assert torch.equal(value, after[key]), key
    assert lora_before and all(not torch.equal(v, after[k]) for k, v in lora_before.items())
    changed = (embed(all_ids).detach() != rows_before).any(dim=1).nonzero().flatten()
    assert changed.tolist() == [qlora.seg_token_id]


def test_generate_and_gradient_checkpointing():
    backbone = _build(trainable=dict(language_model='full'), gradient_checkpointing=True)
    assert backbone.hf_model.is_gradient_checkpointing
    input_ids, mask, vision = _inputs(backbone, grids=((1, 4, 4),))
    out = backbone.generate(input_ids, mask, vision, max_new_tokens=3, min_new_tokens=3)
    assert out['sequences'].shape == (1, input_ids.shape[1] + 3)
    assert torch.equal(out['sequences'][:, : input_ids.shape[1]], input_ids)
    assert torch.equal(out['new_tokens'], out['sequences'][:, input_ids.shape[1] :])


def test_loads_a_local_hf_folder(tmp_path):
    backbone = _build()
    backbone.hf_model.save_pretrained(tmp_path / 'qwen')
    backbone.tokenizer.save_pretrained(tmp_path / 'tok')
    loaded = _build(
        qwen_config=None,
        pretrained=str(tmp_path / 'qwen'),
        processor=dict(
            tokenizer=str(tmp_path / 'tok'), vision_config=TINY['qwen_config']['vision_config']
        ),
    )
    assert loaded.seg_token_id == backbone.seg_token_id
    for (k, a), b in zip(backbone.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match='exactly one of `pretrained`'):
        _build(pretrained=str(tmp_path / 'qwen'))


def test_8bit_quantizes_only_the_llm():
    backbone = _build(trainable=dict(language_model='lora'), quantization=dict(bits=8))
    int8 = [n for n, m in backbone.named_modules() if isinstance(m, bnb.nn.Linear8bitLt)]
    assert len(int8) == backbone.num_quantized_layers == 2 * 7
    assert all('.model.language_model.layers.' in n for n in int8)
    out = backbone(*_inputs(backbone))
    assert torch.isfinite(out['hidden_states']).all()


def _force(backbone, prompt_length):
    """``prefix_allowed_tokens_fn`` writing "<SEG> . <SEG>" then EOS after the prompt."""
    tok = backbone.tokenizer
    dot = tok('.', add_special_tokens=False)['input_ids']
    answer = [backbone.seg_token_id, *dot, backbone.seg_token_id, backbone.processor.eos_token_id]

    def allowed(batch_id, ids):
        return [answer[min(len(ids) - prompt_length, len(answer) - 1)]]

    return allowed


def _left_padded_prompts(backbone):
    """The two prompts of :func:`_inputs` without their answer "<SEG> .", left padded."""
    ids, mask, vision = _inputs(backbone)
    pixels, grid = vision['pixel_values'], vision['image_grid_thw']
    prompts = [ids[i][mask[i].bool()][:-2] for i in range(2)]
    length = max(len(p) for p in prompts)
    pad = [length - len(p) for p in prompts]
    pad_id = backbone.tokenizer.pad_token_id
    left_ids = torch.stack([torch.cat([torch.full((n,), pad_id), p]) for n, p in zip(pad, prompts)])
    left_mask = (torch.arange(length)[None] >= torch.tensor(pad)[:, None]).long()
    split = int(grid[0].prod())
    singles = [
        dict(pixel_values=pixels[:split], image_grid_thw=grid[:1]),
        dict(pixel_values=pixels[split:], image_grid_thw=grid[1:]),
    ]
    return (left_ids, left_mask, vision), prompts, singles


@pytest.fixture(scope='module')
def full_eval():
    return _build(trainable=dict(language_model='full')).eval()


def test_generate_returns_the_states_of_a_full_forward(full_eval):
    """The <SEG> states kept from ``generate`` equal a full forward's before each <SEG>."""
    _, prompts, singles = _left_padded_prompts(full_eval)
    for prompt, one_vision in zip(prompts, singles):
        prompt = prompt[None]
        forced = _force(full_eval, prompt.shape[1])
        out = full_eval.generate(
            prompt,
            torch.ones_like(prompt),
            one_vision,
            max_new_tokens=6,
            prefix_allowed_tokens_fn=forced,
        )
        seq = out['sequences']
        assert out['new_tokens'][0, [0, 2]].eq(full_eval.seg_token_id).all()
        full = full_eval(seq, torch.ones_like(seq), one_vision)
        assert len(out['seg_embeds'][0]) == 2
        torch.testing.assert_close(out['seg_embeds'][0], full['seg_embeds'][0])


def test_batched_left_padded_generate_equals_batch_1(full_eval):
    (left_ids, left_mask, vision), prompts, singles = _left_padded_prompts(full_eval)
    length = left_ids.shape[1]
    forced = dict(max_new_tokens=6, prefix_allowed_tokens_fn=_force(full_eval, length))
    free = dict(max_new_tokens=4, min_new_tokens=4)
    batched = full_eval.generate(left_ids, left_mask, vision, **forced)
    batched_free = full_eval.generate(left_ids, left_mask, vision, **free)
    assert torch.equal(batched['sequences'][:, :length], left_ids)
    for i, one_vision in enumerate(singles):
        prompt = prompts[i][None]
        one = dict(forced, prefix_allowed_tokens_fn=_force(full_eval, prompt.shape[1]))
        single = full_eval.generate(prompt, torch.ones_like(prompt), one_vision, **one)
        assert torch.equal(batched['new_tokens'][i], single['new_tokens'][0])
        assert len(single['seg_embeds'][0]) == 2
        torch.testing.assert_close(batched['seg_embeds'][i], single['seg_embeds'][0])
        single_free = full_eval.generate(prompt, torch.ones_like(prompt), one_vision, **free)
        assert torch.equal(batched_free['new_tokens'][i], single_free['new_tokens'][0])


def test_supervised_logits_only():
    backbone = _build(trainable=dict(language_model='full'), supervised_logits_only=True)
    input_ids, mask, vision = _inputs(backbone)
    labels = torch.full_like(input_ids, -100)
    labels[:, -3:] = input_ids[:, -3:]  # "<SEG> ." (and padding of the short row)
    labels[mask == 0] = -100
    out = backbone(input_ids, mask, vision, labels=labels)
    full = backbone.hf_model.lm_head(out['hidden_states'])  # (B, L, V)
    batch, pos = (labels[:, 1:] != -100).nonzero(as_tuple=True)
    assert torch.equal(out['logits_batch_index'], batch)
    assert torch.allclose(out['logits'], full[batch, pos])
    assert torch.equal(out['logits_labels'], labels[batch, pos + 1])


def test_trainable_projector_is_the_merger():
    backbone = _build(trainable=dict(projector=True))
    trainable = {n for n, p in backbone.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith('qwen.model.visual.merger.') for n in trainable)
    with pytest.raises(ValueError, match="language_model='full'"):
        _build(trainable=dict(language_model='full'), quantization=dict(bits=4))


# ------------------------------------------------ through the segmentor and the data path
QWEN_DEMO = osp.join(REPO, 'configs', 'lisa', 'lisa_tiny-qwen_shapes.py')
#: The 4-bit LoRA core on the demo's tiny Qwen2.5-VL (its LLM is trained in full).
QLORA_CFG = dict(QLORA, lora=dict(r=4, alpha=8, dropout=0.0))


@pytest.fixture(scope='module')
def demo_cfg():
    init_default_scope('lisakit')
    return Config.fromfile(QWEN_DEMO)


def _segmentor(cfg, **backbone):
    model = copy.deepcopy(cfg.model.to_dict())
    model['backbone'].update(copy.deepcopy(backbone))
    torch.manual_seed(0)
    return MODELS.build(model)


def _raw_batch(cfg, split='train', n=4):
    """``n`` neutral samples of the demo's data (pseudo-collated, before the processor)."""
    loader = cfg.train_dataloader if split == 'train' else cfg.val_dataloader
    dataset = copy.deepcopy(loader.dataset.to_dict())
    dataset['num_samples'] = n
    dataset = DATASETS.build(dataset)
    return pseudo_collate([dataset[i] for i in range(n)])


def test_qlora_trains_only_lora_and_seg_rows_through_the_segmentor(demo_cfg):
    model = _segmentor(demo_cfg, **QLORA_CFG).train()
    quantized = [n for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantized and all('.model.language_model.layers.' in n for n in quantized)
    backbone = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
    assert backbone and all('lora_' in n or 'trainable_tokens' in n for n in backbone)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    frozen = {k: v.clone() for k, v in model.state_dict().items() if k not in trainable}
    embed = model.backbone.hf_model.get_input_embeddings()
    all_ids = torch.arange(len(model.backbone.tokenizer))
    rows = embed(all_ids).detach().clone()
    optim = OptimWrapper(torch.optim.AdamW([p for p in model.parameters() if p.requires_grad]))
    batch = _raw_batch(demo_cfg)
    for _ in range(3):  # mmengine's step: processor in the data preprocessor, loss, update
        losses = model.train_step(copy.deepcopy(batch), optim)
    assert torch.isfinite(losses['loss'])
    after = model.state_dict()
    for key, value in frozen.items():
        assert torch.equal(value, after[key]), key
    changed = (embed(all_ids).detach() != rows).any(dim=1).nonzero().flatten()
    assert changed.tolist() == [model.backbone.seg_token_id]


def _forced(processor, text):
    """``prefix_allowed_tokens_fn`` writing ``text`` then ``<|im_end|>``, whatever the
    batch layout: the tokens written so far are the trailing run of the answer's tokens."""
    answer = processor.tokenizer(text, add_special_tokens=False)['input_ids']
    answer.append(processor.eos_token_id)

    def allowed(batch_id, ids):
        ids, k = ids.tolist(), 0
        while k < len(ids) and ids[len(ids) - 1 - k] in answer:
            k += 1
        return [answer[min(k, len(answer) - 1)]]

    return allowed


def _predict(model, batch, **generation_cfg):
    model.generation_cfg = dict(max_new_tokens=5, **generation_cfg)
    with torch.no_grad():
        return model.predict_generate(**model.data_preprocessor(copy.deepcopy(batch), False))


def test_batched_generate_equals_batch_1_through_the_segmentor(demo_cfg):
    """One left-padded batch (M-RoPE positions from the attention mask) gives each sample's
    batch-1 ids, <SEG> states and masks."""
    model = _segmentor(demo_cfg).eval()
    batch = _raw_batch(demo_cfg, 'val', 3)
    data = model.data_preprocessor(copy.deepcopy(batch), False)['inputs']
    prompt_lengths = (data['labels'] == -100).int().argmin(1)
    assert len(set(prompt_lengths.tolist())) > 1, 'prompts of different lengths: padding used'
    forced = _forced(model.backbone.processor, '<SEG> . <SEG>')
    batched = _predict(model, batch, prefix_allowed_tokens_fn=forced)
    free = _predict(model, batch)
    for i in range(3):
        item = {k: v[i] for k, v in batch['inputs'].items()}
        one = pseudo_collate([dict(inputs=item, data_samples=batch['data_samples'][i])])
        alone = _predict(model, one, prefix_allowed_tokens_fn=forced)[0]
        assert batched[i].num_generated_seg == alone.num_generated_seg == 2
        assert batched[i].pred_text == alone.pred_text
        assert torch.equal(batched[i].pred_masks, alone.pred_masks)
        torch.testing.assert_close(batched[i].pred_iou_scores, alone.pred_iou_scores)
        assert free[i].pred_text == _predict(model, one)[0].pred_text


@pytest.mark.slow
def test_qlora_lean_checkpoint_and_exact_resume(tmp_path):
    """Lean checkpoints (adapters, <SEG> rows, neck, mask decoder only) and a resumed run
    equal to an uninterrupted one."""
    state = check_lean_exact_resume(QWEN_DEMO, tmp_path, backbone=QLORA_CFG)
    backbone = [k for k in state if k.startswith('backbone.')]
    assert backbone and all('lora_' in k or 'trainable_tokens' in k for k in backbone)
    assert not any(k.startswith('sam_encoder.') for k in state)


def test_qwen_sam2_demo_trains_a_step():
    init_default_scope('lisakit')
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'lisa', 'lisa_tiny-qwen_sam2_shapes.py'))
    model = _segmentor(cfg).train()
    assert (model.sam_encoder.__class__.__name__, model.head.__class__.__name__) == (
        'SAM2ImageEncoder',
        'SAM2Head',
    )
    optim = OptimWrapper(torch.optim.AdamW([p for p in model.parameters() if p.requires_grad]))
    losses = model.train_step(_raw_batch(cfg, n=2), optim)
    assert {'loss_ce', 'loss_bce', 'loss_dice'} <= set(losses)


@pytest.mark.parametrize('head', ['sam-vit-h', 'sam2.1-hiera-l'])
def test_7b_qwen_configs_swap_only_the_backbone(head):
    """The Qwen2.5-VL-7B bases equal the LLaVA-1.5 ones but for the backbone, which loads
    model, tokenizer and image processor from one folder."""
    base = osp.join(REPO, 'configs', '_base_', 'models')
    llava = Config.fromfile(osp.join(base, f'lisa_llava-1.5-7b-qlora_{head}.py')).model
    qwen = Config.fromfile(osp.join(base, f'lisa_qwen2.5-vl-7b-qlora_{head}.py')).model
    for key in set(llava) - {'backbone'}:
        assert qwen[key] == llava[key], key
    backbone = qwen.backbone
    assert backbone.type == 'Qwen2_5_VLBackbone' and 'tokenizer' not in backbone.processor
    assert backbone.quantization.quant_type == 'nf4' and backbone.lora.r == 8
    assert backbone.trainable == dict(language_model='lora', embeddings='seg_rows')
    assert backbone.gradient_checkpointing


def test_deprecated_tokenizer_key_maps_into_the_processor():
    with pytest.warns(FutureWarning, match='processor.tokenizer'):
        backbone = _build(processor=None, tokenizer=dict(type='WordTokenizer'))
    assert backbone.tokenizer is backbone.processor.tokenizer
    assert backbone.processor.image_processor.patch_size == PATCH
    with pytest.raises(ValueError, match='processor.tokenizer is not set'):
        _build(processor=dict(max_length=64))


@pytest.mark.parametrize(
    'base, demo',
    [
        ('lisa_tiny_qwen', 'lisa_tiny-qwen_shapes'),
        ('lisa_tiny_qwen_sam2', 'lisa_tiny-qwen_sam2_shapes'),
    ],
)
def test_tiny_qwen_bases_are_the_demos_models(base, demo):
    """The demos swap only the backbone of the LLaVA demos; their models are the bases'."""
    model = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'models', f'{base}.py')).model
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'lisa', f'{demo}.py'))
    assert cfg.model == model and model.backbone.type == 'Qwen2_5_VLBackbone'
