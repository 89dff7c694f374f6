# A tiny random Qwen2.5-VL backbone, for CPU demos and tests: a 2-block Qwen2.5-VL ViT (patch 8,
# 2 x 2 merge: a 64 px image -> 8 x 8 patches -> 16 image tokens, as the LLaVA demo's 16 CLIP
# features) and a 2-layer Qwen2 LLM (hidden 128, M-RoPE). Sizes are multiples of 64 so that
# the LLM can also be quantized to 4 bits on CPU. Text: Qwen's chat template (system prompt,
# <|im_start|> / <|im_end|>) over the offline WordTokenizer with Qwen's special tokens added.
# Only the variable `qwen_backbone` is defined: model configs merge it in as
# `model = dict(backbone={{_base_.qwen_backbone}})` (lisa_tiny_qwen.py, lisa_tiny_qwen_sam2.py).
image_side = 64
qwen_backbone = dict(
    _delete_=True,  # replaces the backbone of the config it is merged into
    type='Qwen2_5_VLBackbone',
    processor=dict(
        # the system prompt's words ("are", "system") join the demo vocabulary
        tokenizer=dict(type='WordTokenizer', extra_words=['are', 'system']),
        # the shapes images stay 64 x 64 (no dynamic resize: 16 image tokens each)
        min_pixels=image_side * image_side,
        max_pixels=image_side * image_side,
        max_length=128,
        layout='multi_turn',
    ),
    qwen_config=dict(
        vision_config=dict(
            depth=2,
            hidden_size=64,
            intermediate_size=128,
            num_heads=2,
            out_hidden_size=128,
            patch_size=8,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=image_side,
            fullatt_block_indexes=[1],
        ),
        text_config=dict(
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=256,
            # head dim 32: 16 rotary frequencies split over (t, h, w)
            rope_parameters=dict(rope_type='default', rope_theta=10000.0, mrope_section=[4, 6, 6]),
        ),
    ),
    # the ViT and its merger frozen, the whole tiny LLM trains (as lisa_tiny.py)
    trainable=dict(vision_tower=False, projector=False, language_model='full', embeddings='none'),
    lora=None,
)
