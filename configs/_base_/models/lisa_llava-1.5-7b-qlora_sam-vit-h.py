# LISA on LLaVA-1.5-7B (llava-hf format) with a 4-bit NF4 LLM, LoRA r 8 on q/k/v/o, trainable
# <SEG> rows and gradient checkpointing; SAM ViT-H. Local paths only (nothing downloads):
# put the llava-hf folder (weights, tokenizer and CLIP preprocessor_config.json: one path)
# and SAM's sam_vit_h_4b8939.pth under data/ or override, e.g.
#   --cfg-options model.backbone.pretrained=/path/llava-1.5-7b-hf \
#       model.sam_encoder.checkpoint=/path/sam_vit_h_4b8939.pth
# (the head takes its prompt encoder and mask decoder from the same file).
llava_path = 'data/llava-1.5-7b-hf'
sam_checkpoint = 'data/sam_vit_h_4b8939.pth'
model = dict(
    type='LISA',
    data_preprocessor=dict(type='LISADataPreprocessor'),
    backbone=dict(
        type='LlavaBackbone',
        pretrained=llava_path,
        # The text conventions (the tokenizer, CLIP size and image features come from the
        # pretrained folder): LISA's llava_v1 template, one one-turn sequence per query, and
        # LISA's length limit in text tokens (the image counted as one): 257 = 512 - 255,
        # i.e. 832 tokens once LLaVA-1.5's 576 features (336 px) are expanded.
        processor=dict(template='llava_v1', max_text_length=257, layout='per_query'),
        torch_dtype='bfloat16',
        trainable=dict(language_model='lora', embeddings='seg_rows'),  # LoRA + <SEG> rows
        quantization=dict(bits=4, quant_type='nf4', double_quant=True, compute_dtype='bfloat16'),
        lora=dict(
            r=8, alpha=16, dropout=0.05, target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj']
        ),
        gradient_checkpointing=True,
        # peft's prepare_model_for_kbit_training would upcast every unquantized weight
        # (CLIP, embeddings, LM head) to fp32: +1.1 GiB for 7B. Training runs in bf16 AMP,
        # so keep them bf16 (gradient checkpointing is enabled without it).
        prepare_kbit=False,
        # LM-head logits only where the answer is supervised (a few tokens of ~1,100):
        # (B, L', 32k) logits and their fp32 copy in the loss are ~1 GB at batch 2.
        supervised_logits_only=True,
    ),
    sam_encoder=dict(
        type='SAMImageEncoder',
        arch='vit_h',
        checkpoint=sam_checkpoint,
        torch_dtype='bfloat16',
        # One image per ViT-H forward, as LISA does: the global attention of a 1024-px
        # image takes ~1.5 GiB of activations (docs/benchmarks.md, peak GPU memory).
        images_per_forward=1,
        # Global attention 16 query rows at a time (exact): 1.55 -> 0.42 GiB per block and
        # image in bf16 (measured on CPU, tools/analysis_tools/sam_attention_memory.py).
        attention_query_rows=16,
    ),
    neck=dict(type='SegProjector', out_channels=256),
    head=dict(
        type='SAMHead',  # its weights: sam_encoder.checkpoint's (one SAM path)
        # the head owns the mask losses: LISA's 2.0 x BCE + 0.5 x Dice
        loss_decode=[
            dict(type='MaskBCELoss', loss_weight=2.0),
            dict(type='DiceLoss', loss_weight=0.5),
        ],
    ),
    loss_ce=dict(type='LMCrossEntropyLoss', loss_weight=1.0),
)
