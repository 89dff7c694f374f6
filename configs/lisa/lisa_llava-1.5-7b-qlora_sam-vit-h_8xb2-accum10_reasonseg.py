# The 7B QLoRA recipe: LISA's training on ReasonSeg with a 4-bit LoRA core, one GPU-friendly
# (7.14 GiB peak). LLaVA-1.5-7B (llava-hf folder) with an NF4 LLM, LoRA r 8 / alpha 16 /
# dropout 0.05 on q/k/v/o, trainable <SEG> rows, gradient checkpointing; SAM ViT-H (frozen
# encoder, trained mask decoder); LISA's optimisation: AdamW lr 3e-4, betas (0.9, 0.95),
# weight decay 0, 100 warmup optimizer steps then linear decay, clip 1.0, bf16 AMP, batch 2
# per GPU x 10 accumulation steps (x 8 GPUs in LISA's runs). ReasonSeg is drawn as LISA
# draws it: an image uniformly, 3 of its queries anew at every visit (one one-turn sequence
# each, sharing the image's SAM embedding), explanatory answers with probability 0.1.
#
# How it departs from LISA's training (lisa_llava-v1-7b-lora_sam-vit-h_lisa-repro_...py is
# LISA's exactly; table in configs/lisa/README.md), and why:
#   - base LLaVA-1.5-7B (MLP projector, CLIP-336: 576 visual tokens, no <im_start>/<im_end>)
#     instead of LLaVA-Lightning-7B-v1-1: LLaVA-1.5 has an official Hugging Face release
#     (llava-hf) that loads as it is; LISA's code cannot load it (its projector is one Linear).
#   - NF4 4-bit LLM (QLoRA) instead of bf16: the LLM weights take about 3.5 instead of
#     12.6 GiB, so training fits one 16-24 GB GPU.
#   - LoRA on q/k/v/o instead of q/v: QLoRA (Dettmers et al.) found adapters on more layers
#     needed to match 16-bit fine-tuning under a 4-bit base; this recipe (the seed script's
#     choice) takes every attention projection: 8.4 M LoRA parameters instead of 4.2 M.
#   - only the <SEG> rows of embed_tokens / lm_head train instead of both whole matrices:
#     those are 262 M parameters whose gradients and Adam states add 1.5-3 GiB, which a
#     QLoRA run cannot afford; the only new token is <SEG>.
#   - ReasonSeg alone (239 train images) instead of the 9:3:3:1 mix: a single-dataset
#     fine-tune; use the repro recipe for the paper's setting.
#   - bf16 autocast (AmpOptimWrapper, fp32 trainable weights) instead of DeepSpeed's bf16
#     module cast; the ZeRO-2 variant (..._8xb2-accum10-zero2_reasonseg.py) uses DeepSpeed.
#   - the best checkpoint is kept by cIoU (lisakit's default) instead of gIoU.
# Local paths only (nothing downloads): edit the three paths below in a copy of this file
# (the llava-hf folder is the only model path: weights, tokenizer and CLIP settings), or
# override `model.backbone.pretrained`, `model.sam_encoder.checkpoint` (the SAM head's weights
# too) and each loader's ReasonSeg `data_root` with --cfg-options. The text conventions (template,
# max_length, layout) are the model base's `model.backbone.processor`.
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
    backbone=dict(pretrained=llava_path),
    # ReasonSeg is small (239 train + 200 val images, no augmentation of the SAM input), so
    # the frozen ViT-H embeddings are cached on disk (bf16, 2 MiB per image, ~0.9 GB) and
    # the encoder runs once per image (docs/sam_cache.md). Drop the cache for large mixes.
    sam_encoder=dict(checkpoint=sam_checkpoint, cache=dict(dir='work_dirs/sam_cache')),
)
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasonSegAnnotation'),
    dict(type='SAMPreprocess', img_size=1024),
    dict(type='PackLISAInputs'),
]
# LISA's ReasonSeg draws: a mix of ReasonSeg alone gives each draw a uniform image and,
# with FreshDrawSampler, new queries / templates / explanatory choice at every visit.
samples_per_epoch = 2 * 10 * 500 * 8  # LISA's epoch: batch x accumulation x 500 steps x GPUs
train_dataloader = dict(
    sampler=dict(type='FreshDrawSampler', shuffle=True),
    dataset=dict(
        _delete_=True,
        type='MixedDataset',
        datasets=[
            dict(
                type='ReasonSegDataset',
                data_root=data_root,
                split='train',
                num_classes_per_sample=3,
                explanatory=0.1,  # needs {data_root}/explanatory/train.json (ReasonSeg's)
                pipeline=pipeline,
            )
        ],
        num_samples=samples_per_epoch,
        seed=0,
    ),
)
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
