# The 4-bit LoRA core on the tiny model, runnable on CPU: the LLM is quantized to NF4
# (bitsandbytes), frozen, and trained through LoRA on q/k/v/o plus the <SEG> rows of the
# input embeddings and the LM head; CLIP, the projector and the SAM encoder stay frozen
# and unquantized; the neck and the SAM mask decoder train.
# `python tools/train.py configs/lisa/lisa_tiny-qlora_shapes.py`
_base_ = ['./lisa_tiny_shapes.py']
model = dict(
    backbone=dict(
        trainable=dict(language_model='lora', embeddings='seg_rows'),
        quantization=dict(bits=4, quant_type='nf4', double_quant=True, compute_dtype='float32'),
        lora=dict(
            _delete_=True,
            r=8,
            alpha=16,
            dropout=0.05,
            target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj'],
        ),
        supervised_logits_only=True,  # LM-head logits only where the loss reads them
    )
)
# Lean checkpoints: only LoRA, the <SEG> rows, the neck and the mask decoder are saved.
custom_hooks = [
    dict(type='TrainingHistoryHook'),
    dict(type='EarlyStoppingHook', monitor='cIoU', rule='greater', patience=5, min_delta=0.001),
    dict(type='LeanCheckpointHook'),
]
