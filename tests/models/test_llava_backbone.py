"""LlavaBackbone options: freezing and LoRA on the language model only."""

import copy

import torch

from lisakit.registry import MODELS

LORA = dict(vision_tower=False, projector=False, language_model='lora', embeddings='none')


def _backbone(tiny_cfg, **overrides):
    cfg = copy.deepcopy(tiny_cfg.model.backbone.to_dict())
    cfg.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _inputs(backbone, batch=2):
    tok = backbone.tokenizer
    text = ['<image>\nsegment the red shape', '<image>\nwhat is the blue shape']
    ids = [
        torch.tensor(
            [tok.bos_token_id]
            + tok(t, add_special_tokens=False)['input_ids']
            + tok('<SEG> .', add_special_tokens=False)['input_ids']
        )
        for t in text[:batch]
    ]
    input_ids = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True)
    mask = torch.arange(input_ids.shape[1])[None] < torch.tensor([len(i) for i in ids])[:, None]
    size = backbone.hf_model.config.vision_config.image_size
    return input_ids, mask.long(), dict(pixel_values=torch.randn(batch, 3, size, size))


def test_lora_targets_only_the_language_model(tiny_cfg):
    backbone = _backbone(tiny_cfg, trainable=LORA, lora=dict(r=4, alpha=8, dropout=0.0))
    lora = [n for n, _ in backbone.named_parameters() if 'lora_' in n]
    assert lora and all('language_model' in n for n in lora)
    assert {n.split('.')[-4] for n in lora} == {'q_proj', 'k_proj', 'v_proj', 'o_proj'}
    trainable = {n for n, p in backbone.named_parameters() if p.requires_grad}
    assert trainable == set(lora)


def test_lora_gradients_flow_and_base_stays_frozen(tiny_cfg):
    backbone = _backbone(tiny_cfg, trainable=LORA, lora=dict(r=4, alpha=8, dropout=0.0))
    before = {n: p.detach().clone() for n, p in backbone.named_parameters() if 'lora_' not in n}
    params = [p for p in backbone.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2)
    for _ in range(3):
        out = backbone(*_inputs(backbone))
        loss = torch.cat(out['seg_embeds']).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
        opt.step()
    for n, p in backbone.named_parameters():
        if n in before:
            assert torch.equal(before[n], p.detach()), n


def test_full_llm_training_leaves_vision_frozen(tiny_cfg):
    backbone = _backbone(tiny_cfg, trainable=dict(language_model='full'), lora=None)
    hf = backbone.hf_model
    assert all(p.requires_grad for p in hf.model.language_model.parameters())
    assert all(p.requires_grad for p in hf.lm_head.parameters())
    assert not any(p.requires_grad for p in hf.model.vision_tower.parameters())
    assert not any(p.requires_grad for p in hf.model.multi_modal_projector.parameters())


def test_seg_token_added_and_embeddings_resized(tiny_cfg):
    backbone = _backbone(tiny_cfg)
    tok = backbone.tokenizer
    assert tok.convert_tokens_to_ids('<SEG>') == backbone.seg_token_id
    assert backbone.hf_model.get_input_embeddings().num_embeddings == len(tok)
    assert backbone.num_image_tokens == 16  # (32 / 8) ** 2 patches, CLS dropped
