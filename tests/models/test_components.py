"""Each registered model component on its own: build, forward, backward, no NaN."""

import pytest
import torch

from lisakit.registry import MODELS

TINY_ARCH = dict(
    embed_dim=64,
    depth=2,
    num_heads=2,
    global_attn_indexes=(1,),
    patch_size=4,
    window_size=8,
    out_chans=64,
)


@pytest.mark.parametrize('neck', ['SegProjector', 'LinearProjector'])
def test_necks_map_n_d_to_n_c(neck):
    model = MODELS.build(dict(type=neck, in_channels=128, out_channels=64))
    x = torch.randn(5, 128, requires_grad=True)
    y = model(x)
    assert y.shape == (5, 64)
    y.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert model(torch.zeros(0, 128)).shape == (0, 64)


def test_seg_projector_is_lisas_mlp():
    model = MODELS.build(dict(type='SegProjector', in_channels=16, out_channels=8))
    kinds = [type(m).__name__ for m in model.fc]
    assert kinds == ['Linear', 'ReLU', 'Linear', 'Dropout']
    assert model.fc[0].weight.shape == (16, 16) and model.fc[2].weight.shape == (8, 16)


def test_sam_encoder_frozen_no_grad_and_shape():
    enc = MODELS.build(dict(type='SAMImageEncoder', arch=TINY_ARCH, img_size=64))
    enc.train()
    assert not enc.encoder.training  # frozen encoder stays in eval mode
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    y = enc(x)
    assert y.shape == (2, 64, 16, 16) and not y.requires_grad
    assert torch.isfinite(y).all()


def test_sam_encoder_trainable_when_not_frozen():
    enc = MODELS.build(dict(type='SAMImageEncoder', arch=TINY_ARCH, img_size=64, frozen=False))
    y = enc(torch.randn(1, 3, 64, 64))
    y.mean().backward()
    assert any(p.grad is not None for p in enc.parameters())


def test_sam_encoder_images_per_forward_matches_whole_batch():
    torch.manual_seed(0)
    whole = MODELS.build(dict(type='SAMImageEncoder', arch=TINY_ARCH, img_size=64))
    split = MODELS.build(
        dict(type='SAMImageEncoder', arch=TINY_ARCH, img_size=64, images_per_forward=2)
    )
    split.load_state_dict(whole.state_dict())
    x = torch.randn(5, 3, 64, 64)
    torch.testing.assert_close(split(x), whole(x), rtol=1e-5, atol=1e-5)  # chunks 2 + 2 + 1


@pytest.mark.parametrize('arch,dim', [('vit_b', 768), ('vit_l', 1024), ('vit_h', 1280)])
def test_official_sam_sizes(arch, dim):
    with torch.device('meta'):
        enc = MODELS.build(dict(type='SAMImageEncoder', arch=arch))
    assert enc.encoder.patch_embed.proj.out_channels == dim
    assert enc.embedding_size == 64 and enc.out_channels == 256


def _head():
    return MODELS.build(
        dict(
            type='SAMHead',
            embed_dim=64,
            image_embedding_size=16,
            input_image_size=64,
            mask_in_chans=4,
            decoder_mlp_dim=128,
            decoder_num_heads=2,
            iou_head_hidden_dim=64,
        )
    )


def test_sam_head_one_mask_per_prompt_and_backward():
    head = _head()
    emb = torch.randn(2, 64, 16, 16)
    prompts = [torch.randn(3, 64, requires_grad=True), torch.randn(0, 64)]
    masks, ious = head(emb, prompts)
    assert [tuple(m.shape) for m in masks] == [(3, 64, 64), (0, 64, 64)]
    assert [tuple(i.shape) for i in ious] == [(3,), (0,)]
    masks[0].sum().backward()
    assert torch.isfinite(prompts[0].grad).all() and prompts[0].grad.abs().sum() > 0
    assert not any(p.requires_grad for p in head.prompt_encoder.parameters())
    assert all(p.requires_grad for p in head.mask_decoder.parameters())


def test_sam_head_postprocess_crops_and_resizes():
    head = _head()
    low = torch.zeros(1, 64, 64)
    low[:, :32, :48] = 5.0  # the valid (resized) region of a 48 x 64 image padded to 64
    out = head.postprocess(low, input_size=(48, 64), original_size=(30, 40))
    assert out.shape == (1, 30, 40) and out.dtype == torch.float32


def test_sam_checkpoint_loading(tmp_path):
    head = _head()
    enc = MODELS.build(dict(type='SAMImageEncoder', arch=TINY_ARCH, img_size=64))
    state = {f'image_encoder.{k}': v for k, v in enc.encoder.state_dict().items()}
    state.update({f'prompt_encoder.{k}': v for k, v in head.prompt_encoder.state_dict().items()})
    state.update({f'mask_decoder.{k}': v for k, v in head.mask_decoder.state_dict().items()})
    path = tmp_path / 'sam_tiny.pth'
    torch.save(state, path)
    enc2 = MODELS.build(
        dict(type='SAMImageEncoder', arch=TINY_ARCH, img_size=64, checkpoint=str(path))
    )
    for k, v in enc.encoder.state_dict().items():
        assert torch.equal(v, enc2.encoder.state_dict()[k])
    with pytest.raises(ValueError, match='arch'):
        MODELS.build(
            dict(
                type='SAMImageEncoder',
                arch=dict(TINY_ARCH, embed_dim=32),
                img_size=64,
                checkpoint=str(path),
            )
        )
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        MODELS.build(
            dict(
                type='SAMImageEncoder',
                arch=TINY_ARCH,
                img_size=64,
                checkpoint=str(tmp_path / 'missing.pth'),
            )
        )


@pytest.mark.parametrize('rows', [1, 3, 16])
def test_sam_encoder_query_chunked_attention_matches_sam(rows):
    torch.manual_seed(0)
    sam = MODELS.build(dict(type='SAMImageEncoder', arch=TINY_ARCH, img_size=64))
    for block in sam.encoder.blocks:  # non-zero relative positions (SAM inits them to 0)
        torch.nn.init.normal_(block.attn.rel_pos_h)
        torch.nn.init.normal_(block.attn.rel_pos_w)
    chunked = MODELS.build(
        dict(type='SAMImageEncoder', arch=TINY_ARCH, img_size=64, attention_query_rows=rows)
    )
    chunked.load_state_dict(sam.state_dict())
    kinds = [type(b.attn).__name__ for b in chunked.encoder.blocks]
    assert kinds == ['Attention', 'QueryChunkedAttention']  # only the global block
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(chunked(x), sam(x), rtol=1e-5, atol=1e-5)


def test_sam_encoder_query_rows_must_be_positive():
    with pytest.raises(ValueError, match='attention_query_rows'):
        MODELS.build(
            dict(type='SAMImageEncoder', arch=TINY_ARCH, img_size=64, attention_query_rows=0)
        )
