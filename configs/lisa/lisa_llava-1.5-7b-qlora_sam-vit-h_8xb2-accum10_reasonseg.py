# LISA's recipe on ReasonSeg with the 4-bit LoRA core: LLaVA-1.5-7B (llava-hf folder) with an
# NF4 LLM, LoRA r 8 / alpha 16 / dropout 0.05 on q/k/v/o, trainable <SEG> rows, gradient
# checkpointing; SAM ViT-H (frozen encoder, trained mask decoder); LISA's optimisation: AdamW
# lr 3e-4, betas (0.9, 0.95), weight decay 0, 100 warmup optimizer steps then linear decay,
# clip 1.0, bf16, batch 2 per GPU x 10 accumulation steps (x 8 GPUs in LISA's runs).
# Local paths only (nothing downloads): edit the three paths below in a copy of this file,
# or override `model.backbone.pretrained`, `model.backbone.tokenizer`, the
# `TokenizeConversation` tokenizer of each loader, `model.sam_encoder.checkpoint`,
# `model.head.checkpoint` and each loader's `dataset.data_root` with --cfg-options.
_base_ = [
    '../_base_/models/lisa_llava-1.5-7b-qlora_sam-vit-h.py',
    '../_base_/datasets/reasonseg.py',
    '../_base_/schedules/schedule_lisa.py',
    '../_base_/default_runtime.py',
]
llava_path = 'data/llava-1.5-7b-hf'
sam_checkpoint = 'data/sam_vit_h_4b8939.pth'
data_root = 'data/reason_seg/ReasonSeg'
model = dict(
    backbone=dict(tokenizer=llava_path, pretrained=llava_path),
    # ReasonSeg is small (239 train + 200 val images, no augmentation of the SAM input), so
    # the frozen ViT-H embeddings are cached on disk (bf16, 2 MiB per image, ~0.9 GB) and
    # the encoder runs once per image (docs/sam_cache.md). Drop the cache for large mixes.
    sam_encoder=dict(checkpoint=sam_checkpoint, cache=dict(dir='work_dirs/sam_cache')),
    head=dict(checkpoint=sam_checkpoint),
)
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasonSegAnnotation'),
    dict(type='SAMPreprocess', img_size=1024),
    dict(type='CLIPPreprocess', size=336),
    dict(type='TokenizeConversation', tokenizer=llava_path, template='llava_v1', max_length=512),
    dict(type='PackLISAInputs'),
]
train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=pipeline))
test_dataloader = val_dataloader

# Iteration-based: validate and keep the best cIoU checkpoint every 500 optimizer steps.
# Only the trainable weights go into checkpoints (LoRA, <SEG> rows, neck, mask decoder).
save_interval = 500 * 10
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=save_interval),
)
custom_hooks = [
    dict(type='TrainingHistoryHook'),
    dict(type='LeanCheckpointHook'),
]
log_processor = dict(by_epoch=False)
