# LISA-7B-v1's training, exactly as LISA's train_ds.py runs it (see configs/lisa/README.md,
# "Two 7B recipes", for how the QLoRA recipe departs from it, and docs/fidelity.md):
#   model   LLaVA-v1 layout (LISA's base: LLaVA-Lightning-7B-v1-1; CLIP ViT-L/14-224,
#           penultimate layer, one linear projector, <im_start>/<im_end>, '[SEG]'), bf16 LLM
#           (no quantization), LoRA r 8 / alpha 16 / dropout 0.05 on q_proj and v_proj of the
#           LLM only, embed_tokens and lm_head trained in full, gradient checkpointing;
#           CLIP, projector, SAM encoder and prompt encoder frozen; SAM mask decoder and the
#           text_hidden_fcs neck trained; losses CE 1.0 + BCE 2.0 + Dice 0.5.
#   data    the 9:3:3:1 mix (sem-seg : refer-seg : VQA : ReasonSeg), 3 queries (classes,
#           sentences) per image, each one one-turn sequence sharing the image's SAM
#           embedding; ReasonSeg explanatory answers 0.1; fresh draws every visit.
#   optim   AdamW 3e-4 (0.9, 0.95), no weight decay, clip 1.0, 100 warmup steps then linear
#           decay to 0 at 5000 optimizer steps (10 epochs x 500), batch 2 per GPU x 10
#           accumulation x 8 GPUs; DeepSpeed ZeRO-2 in bf16 (buckets 5e8) as LISA.
#   eval    ReasonSeg val after every 500 optimizer steps (LISA's epoch); the best
#           checkpoint is kept by gIoU, as LISA keeps it.
# The base is a Hugging Face LLaVA folder (LlavaForConditionalGeneration, linear projector)
# of LLaVA-Lightning-7B-v1-1 (LISA's --version: the merged weights, LLaVA's apply_delta on
# liuhaotian/LLaVA-Lightning-7B-delta-v1-1), written once from local copies of it and of its
# CLIP tower (needs `pip install sentencepiece protobuf` for its tokenizer.model):
#   python tools/model_converters/llava_v1_to_hf.py /data/hf/LLaVA-Lightning-7B-v1-1 \
#       /data/hf/clip-vit-large-patch14 data/LLaVA-Lightning-7B-v1-1-hf
# Local paths only: edit the two paths below in a copy, or override them with --cfg-options
# (the LLaVA folder is the only model path: weights, tokenizer, CLIP settings); the data
# (LISA's 9:3:3:1 mix) is _base_/datasets/lisa_mix.py under data/ (LISA's --dataset_dir).
# Needs `pip install deepspeed` and GPUs:
#   bash tools/dist_train.sh \
#       configs/lisa/lisa_llava-v1-7b-lora_sam-vit-h_lisa-repro_8xb2-accum10-zero2_lisa-mix.py 8
_base_ = [
    '../_base_/models/lisa_llava-v1-7b_sam-vit-h.py',
    '../_base_/datasets/lisa_mix.py',
    '../_base_/schedules/schedule_lisa.py',
    '../_base_/runtimes/deepspeed_zero2.py',
    '../_base_/default_runtime.py',
]
llava_path = 'data/LLaVA-Lightning-7B-v1-1-hf'
sam_checkpoint = 'data/sam_vit_h_4b8939.pth'

model = dict(
    backbone=dict(
        # weights and tokenizer; CLIP 224 px from its config. LISA's text conventions (the
        # model base's processor: llava_v1, 512 tokens after the 256 image features, one
        # sequence per query, <im_start>/<im_end> and '[SEG]', added: LLaVA-v1's tokenizer
        # lacks them) and bf16 come from the model base.
        pretrained=llava_path,
        # LoRA on q/v plus all of embed_tokens and lm_head, as LISA
        trainable=dict(language_model='lora', embeddings='all'),
        lora=dict(r=8, alpha=16, dropout=0.05, target_modules=['q_proj', 'v_proj']),
        gradient_checkpointing=True,
    ),
    sam_encoder=dict(checkpoint=sam_checkpoint, images_per_forward=1),  # the head's too
)

# ---------------------------------------------------------------- runtime
strategy = dict(  # LISA's DeepSpeed buckets (train_ds.py)
    zero_optimization=dict(allgather_bucket_size=5e8, reduce_bucket_size=5e8),
)
save_interval = 500 * 10  # one LISA epoch: 500 optimizer steps of 10 iterations
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=save_interval, save_best='gIoU', rule='greater'),
)
custom_hooks = [dict(type='TrainingHistoryHook'), dict(type='LeanCheckpointHook')]
log_processor = dict(by_epoch=False)
