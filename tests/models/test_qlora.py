"""The 4-bit LoRA core on the tiny backbone (bitsandbytes NF4 runs on CPU)."""

import copy

import bitsandbytes as bnb
import pytest
import torch

from lisakit.models.backbones.llm_adapters import build_bnb_config
from lisakit.registry import MODELS

QLORA = dict(
    trainable=dict(language_model='lora', embeddings='seg_rows'),
    quantization=dict(bits=4, quant_type='nf4', double_quant=True, compute_dtype='float32'),
    lora=dict(r=4, alpha=8, dropout=0.0),
)


def _build(tiny_cfg, **overrides):
    cfg = copy.deepcopy(tiny_cfg.model.backbone.to_dict())
    cfg.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _inputs(backbone):
    tok = backbone.tokenizer
    texts = [
        '<image>\ncan you segment the red shape ? <SEG> .',
        '<image>\nplease segment the blue shape . it is <SEG> .',
    ]
    ids = [
        torch.tensor([tok.bos_token_id] + tok(t, add_special_tokens=False)['input_ids'])
        for t in texts
    ]
    input_ids = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True)
    lengths = torch.tensor([len(i) for i in ids])
    mask = (torch.arange(input_ids.shape[1])[None] < lengths[:, None]).long()
    size = backbone.hf_model.config.vision_config.image_size
    return input_ids, mask, dict(pixel_values=torch.randn(2, 3, size, size))


def _effective_rows(backbone):
    """(V, D) input-embedding matrix and (V, D) LM-head matrix as the model uses them."""
    hf = backbone.hf_model
    vocab = hf.config.text_config.vocab_size
    with torch.no_grad():
        emb = hf.get_input_embeddings()(torch.arange(vocab)[None])[0]
        eye = torch.eye(hf.config.text_config.hidden_size)
        head = hf.get_output_embeddings()(eye[None])[0].T
    return emb.clone(), head.clone()


@pytest.fixture(scope='module')
def qlora_backbone(tiny_cfg):
    return _build(tiny_cfg, **QLORA)


def test_only_the_language_model_is_4bit(qlora_backbone):
    quantized = [n for n, m in qlora_backbone.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantized and qlora_backbone.num_quantized_layers == len(quantized)
    assert all('language_model.layers' in n for n in quantized)
    hf = qlora_backbone.hf_model
    for part in (hf.model.vision_tower, hf.model.multi_modal_projector):
        assert not any(isinstance(m, bnb.nn.Linear4bit) for m in part.modules())


def test_trainable_parameters_are_lora_and_seg_rows(qlora_backbone):
    trainable = [n for n, p in qlora_backbone.named_parameters() if p.requires_grad]
    assert trainable
    for name in trainable:
        assert 'lora_' in name or 'trainable_tokens_delta' in name, name
    assert sum('trainable_tokens_delta' in n for n in trainable) == 2  # embeddings + LM head


def test_training_changes_only_lora_and_seg_rows(tiny_cfg):
    backbone = _build(tiny_cfg, **QLORA)
    backbone.train()
    frozen = {
        n: t.detach().clone()
        for n, t in backbone.state_dict().items()
        if 'lora_' not in n and 'trainable_tokens_delta' not in n
    }
    emb0, head0 = _effective_rows(backbone)
    params = [p for p in backbone.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2)
    inputs = _inputs(backbone)
    for step in range(4):
        if step == 2:  # a validation pass in between (bitsandbytes' CPU repacking)
            backbone.eval()
            with torch.no_grad():
                backbone(*inputs)
            backbone.train()
        out = backbone(*inputs)
        seg = backbone.seg_token_id
        loss = torch.cat(out['seg_embeds']).pow(2).mean() - out['logits'][..., seg].mean()
        opt.zero_grad()
        loss.backward()
        lora_grads = [p.grad for n, p in backbone.named_parameters() if 'lora_B' in n]
        assert all(torch.isfinite(g).all() for g in lora_grads)
        assert any(g.abs().sum() > 0 for g in lora_grads)
        opt.step()
    for name, before in frozen.items():
        assert torch.equal(before, backbone.state_dict()[name]), name  # bit-identical
    emb1, head1 = _effective_rows(backbone)
    seg = backbone.seg_token_id
    others = torch.arange(emb0.shape[0]) != seg
    assert torch.equal(emb0[others], emb1[others]) and not torch.equal(emb0[seg], emb1[seg])
    assert torch.equal(head0[others], head1[others]) and not torch.equal(head0[seg], head1[seg])


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_training_on_cuda_keeps_the_4bit_base(tiny_cfg):
    quantization = dict(QLORA['quantization'], compute_dtype='bfloat16')
    backbone = _build(tiny_cfg, **dict(QLORA, quantization=quantization)).to('cuda').train()
    layers = [m for m in backbone.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers and all(m.weight.dtype == torch.uint8 for m in layers)
    assert all(m.weight.device.type == 'cuda' for m in layers)
    assert all(m.weight.quant_state.absmax.device.type == 'cuda' for m in layers)
    frozen = {
        n: t.detach().clone()
        for n, t in backbone.state_dict().items()
        if 'lora_' not in n and 'trainable_tokens_delta' not in n
    }
    opt = torch.optim.AdamW([p for p in backbone.parameters() if p.requires_grad], lr=1e-2)
    ids, mask, vision = _inputs(backbone)
    inputs = [ids.cuda(), mask.cuda(), {k: v.cuda() for k, v in vision.items()}]
    for _ in range(3):
        with torch.autocast('cuda', dtype=torch.bfloat16):
            out = backbone(*inputs)
            loss = torch.cat(out['seg_embeds']).float().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        grads = [p.grad for n, p in backbone.named_parameters() if 'lora_B' in n]
        assert any(g.abs().sum() > 0 for g in grads)
        opt.step()
    for name, before in frozen.items():
        assert torch.equal(before, backbone.state_dict()[name]), name


def test_eval_forward_without_grad(qlora_backbone):
    qlora_backbone.eval()
    with torch.no_grad():
        out = qlora_backbone(*_inputs(qlora_backbone))
    assert torch.isfinite(out['hidden_states']).all()
    qlora_backbone.train()


def test_quantized_llm_cannot_train_in_full(tiny_cfg):
    with pytest.raises(ValueError, match="cannot train in full.*language_model='full'"):
        _build(tiny_cfg, **dict(QLORA, trainable=dict(language_model='full'), lora=None))


def test_bnb_config_options():
    cfg = build_bnb_config(dict(bits=4, quant_type='fp4', double_quant=False))
    assert cfg.load_in_4bit and cfg.bnb_4bit_quant_type == 'fp4'
    assert not cfg.bnb_4bit_use_double_quant
    assert build_bnb_config(dict(bits=8)).load_in_8bit
    with pytest.raises(ValueError, match='expected 4 or 8'):
        build_bnb_config(dict(bits=3))
    with pytest.raises(ValueError, match='quant_typ'):
        build_bnb_config(dict(bits=4, quant_typ='nf4'))


def test_full_embedding_option(tiny_cfg):
    backbone = _build(tiny_cfg, trainable=dict(language_model='frozen', embeddings='all'))
    hf = backbone.hf_model
    assert hf.get_input_embeddings().weight.requires_grad
    assert hf.get_output_embeddings().weight.requires_grad
    assert not any(p.requires_grad for p in hf.model.language_model.layers.parameters())
