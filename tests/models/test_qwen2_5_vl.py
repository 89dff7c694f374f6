"""Qwen2.5-VL backbone on a tiny random model: 4-bit LLM, LoRA, <SEG> rows, <SEG> states."""

import copy

import bitsandbytes as bnb
import pytest
import torch

from lisakit.models.backbones.qwen2_5_vl import QWEN_VISION_END, QWEN_VISION_START
from lisakit.registry import MODELS

PATCH, MERGE, TEMPORAL = 4, 2, 2
TINY = dict(
    type='Qwen2_5_VLBackbone',
    tokenizer=dict(type='WordTokenizer'),
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
    return input_ids, mask, pixels, grid


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
    input_ids, mask, pixels, grid = _inputs(qlora)
    out = qlora(input_ids, mask, pixels, grid)
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
    input_ids, mask, pixels, grid = _inputs(backbone, grids=((1, 4, 4),))
    out = backbone.generate(input_ids, mask, pixels, grid, max_new_tokens=3, min_new_tokens=3)
    assert out['sequences'].shape == (1, input_ids.shape[1] + 3)
    assert torch.equal(out['sequences'][:, : input_ids.shape[1]], input_ids)
    assert torch.equal(out['new_tokens'], out['sequences'][:, input_ids.shape[1] :])


def test_loads_a_local_hf_folder(tmp_path):
    backbone = _build()
    backbone.hf_model.save_pretrained(tmp_path / 'qwen')
    backbone.tokenizer.save_pretrained(tmp_path / 'tok')
    loaded = _build(
        qwen_config=None, pretrained=str(tmp_path / 'qwen'), tokenizer=str(tmp_path / 'tok')
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
    answer = [backbone.seg_token_id, *dot, backbone.seg_token_id, tok.eos_token_id]

    def allowed(batch_id, ids):
        return [answer[min(len(ids) - prompt_length, len(answer) - 1)]]

    return allowed


def _left_padded_prompts(backbone):
    """The two prompts of :func:`_inputs` without their answer "<SEG> .", left padded."""
    ids, mask, pixels, grid = _inputs(backbone)
    prompts = [ids[i][mask[i].bool()][:-2] for i in range(2)]
    length = max(len(p) for p in prompts)
    pad = [length - len(p) for p in prompts]
    pad_id = backbone.tokenizer.pad_token_id
    left_ids = torch.stack([torch.cat([torch.full((n,), pad_id), p]) for n, p in zip(pad, prompts)])
    left_mask = (torch.arange(length)[None] >= torch.tensor(pad)[:, None]).long()
    split = int(grid[0].prod())
    singles = [(pixels[:split], grid[:1]), (pixels[split:], grid[1:])]
    return (left_ids, left_mask, pixels, grid), prompts, singles


@pytest.fixture(scope='module')
def full_eval():
    return _build(trainable=dict(language_model='full')).eval()


def test_generate_returns_the_states_of_a_full_forward(full_eval):
    """The <SEG> states kept from ``generate`` equal a full forward's before each <SEG>."""
    _, prompts, singles = _left_padded_prompts(full_eval)
    for prompt, (pix, thw) in zip(prompts, singles):
        prompt = prompt[None]
        forced = _force(full_eval, prompt.shape[1])
        out = full_eval.generate(
            prompt,
            torch.ones_like(prompt),
            pix,
            thw,
            max_new_tokens=6,
            prefix_allowed_tokens_fn=forced,
        )
        seq = out['sequences']
        assert out['new_tokens'][0, [0, 2]].eq(full_eval.seg_token_id).all()
        full = full_eval(seq, torch.ones_like(seq), pix, thw)
        assert len(out['seg_embeds'][0]) == 2
        torch.testing.assert_close(out['seg_embeds'][0], full['seg_embeds'][0])


def test_batched_left_padded_generate_equals_batch_1(full_eval):
    (left_ids, left_mask, pixels, grid), prompts, singles = _left_padded_prompts(full_eval)
    length = left_ids.shape[1]
    forced = dict(max_new_tokens=6, prefix_allowed_tokens_fn=_force(full_eval, length))
    free = dict(max_new_tokens=4, min_new_tokens=4)
    batched = full_eval.generate(left_ids, left_mask, pixels, grid, **forced)
    batched_free = full_eval.generate(left_ids, left_mask, pixels, grid, **free)
    assert torch.equal(batched['sequences'][:, :length], left_ids)
    for i, (pix, thw) in enumerate(singles):
        prompt = prompts[i][None]
        one = dict(forced, prefix_allowed_tokens_fn=_force(full_eval, prompt.shape[1]))
        single = full_eval.generate(prompt, torch.ones_like(prompt), pix, thw, **one)
        assert torch.equal(batched['new_tokens'][i], single['new_tokens'][0])
        assert len(single['seg_embeds'][0]) == 2
        torch.testing.assert_close(batched['seg_embeds'][i], single['seg_embeds'][0])
        single_free = full_eval.generate(prompt, torch.ones_like(prompt), pix, thw, **free)
        assert torch.equal(batched_free['new_tokens'][i], single_free['new_tokens'][0])


def test_supervised_logits_only():
    backbone = _build(trainable=dict(language_model='full'), supervised_logits_only=True)
    input_ids, mask, pixels, grid = _inputs(backbone)
    labels = torch.full_like(input_ids, -100)
    labels[:, -3:] = input_ids[:, -3:]  # "<SEG> ." (and padding of the short row)
    labels[mask == 0] = -100
    out = backbone(input_ids, mask, pixels, grid, labels=labels)
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
