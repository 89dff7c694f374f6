# The 4-bit LoRA core on Qwen2.5-VL-7B-Instruct (a local Hugging Face folder: weights,
# tokenizer and image processor from ONE path): NF4 LLM (the ViT, its merger and the LM head
# stay bf16), LoRA r 8 / alpha 16 / dropout 0.05 on the LLM's q/k/v/o only, trainable <SEG>
# rows, gradient checkpointing. Only the variable `qwen_backbone` is defined: model configs
# merge it in as `model = dict(backbone={{_base_.qwen_backbone}})`.
# Override the folder with --cfg-options model.backbone.pretrained=/path/Qwen2.5-VL-7B-Instruct
qwen_path = 'data/Qwen2.5-VL-7B-Instruct'
# Dynamic resolution bounded as LLaVA-1.5's fixed 336 px: at most 576 image tokens
# (max_pixels / (14 px patch x 2 merge) ** 2), at least 256.
qwen_token_pixels = 28 * 28
max_image_tokens = 576
qwen_backbone = dict(
    _delete_=True,  # replaces the backbone of the config it is merged into
    type='Qwen2_5_VLBackbone',
    pretrained=qwen_path,
    processor=dict(
        min_pixels=256 * qwen_token_pixels,
        max_pixels=max_image_tokens * qwen_token_pixels,
        # LISA's cut in text tokens, the image's <|image_pad|> tokens counted as one (and
        # <|vision_start|> / <|vision_end|> one each, as LISA's <im_start> / <im_end>)
        max_text_length=257,
        layout='per_query',  # LISA: one one-turn sequence per query
    ),
    torch_dtype='bfloat16',
    trainable=dict(language_model='lora', embeddings='seg_rows'),  # LoRA + <SEG> rows
    quantization=dict(bits=4, quant_type='nf4', double_quant=True, compute_dtype='bfloat16'),
    lora=dict(r=8, alpha=16, dropout=0.05, target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj']),
    gradient_checkpointing=True,
    # keep the unquantized weights bf16 under bf16 AMP (as the LLaVA-1.5 recipe)
    prepare_kbit=False,
    # LM-head logits only where the answer is supervised: Qwen's vocabulary is 152k, so full
    # (N, L, V) logits of 6 sequences of ~850 tokens would take ~1.4 GiB in bf16
    supervised_logits_only=True,
)
