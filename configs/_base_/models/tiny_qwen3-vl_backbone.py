# A tiny random Qwen3-VL backbone, for CPU demos and tests: the tiny Qwen2.5-VL of
# tiny_qwen2.5-vl_backbone.py (2-block ViT, patch 8 instead of the real 16, 2 x 2 merge: a
# 64 px image -> 8 x 8 patches -> 16 image tokens; 2-layer LLM, hidden 128) as Qwen3-VL:
# an 8 x 8 grid of learned ViT position embeddings, full attention in every ViT block,
# DeepStack features of block 0 added to the first LLM layer, a Qwen3 LLM (q / k norms,
# interleaved M-RoPE) and Qwen3-VL's chat template (no default system prompt) over the
# offline WordTokenizer with Qwen's special tokens added.
# It redefines the variable `qwen_backbone`: configs merge it in as
# `model = dict(backbone={{_base_.qwen_backbone}})` (lisa_tiny-qwen3_shapes.py).
_base_ = ['./tiny_qwen2.5-vl_backbone.py']
qwen_backbone = dict(
    type='Qwen3VLBackbone',
    processor=dict(tokenizer=dict(type='WordTokenizer', extra_words=[])),
    qwen_config=dict(
        vision_config=dict(
            num_position_embeddings=(64 // 8) ** 2,  # (image side / patch side) ** 2
            deepstack_visual_indexes=[0],
            # Qwen2.5-VL's window attention: Qwen3-VL's ViT has none
            window_size=None,
            fullatt_block_indexes=None,
        ),
        text_config=dict(
            head_dim=32,
            # 16 rotary frequencies interleaved over (t, h, w)
            rope_parameters=dict(rope_type='default', rope_theta=10000.0, mrope_section=[6, 5, 5]),
        ),
    ),
)
