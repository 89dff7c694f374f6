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
# The base must be a Hugging Face LLaVA folder (LlavaForConditionalGeneration, linear
# projector) of LLaVA-Lightning-7B-v1-1. lisakit's converter reads LISA checkpoints
# (tools/model_converters/lisa_to_lisakit.py); it does not convert a plain LLaVA-v1 release.
# Local paths only: edit the three paths below in a copy, or override them with
# --cfg-options. Needs `pip install deepspeed` and GPUs:
#   bash tools/dist_train.sh \
#       configs/lisa/lisa_llava-v1-7b-lora_sam-vit-h_lisa-repro_8xb2-accum10-zero2_lisa-mix.py 8
_base_ = [
    '../_base_/models/lisa_llava-v1-7b_sam-vit-h.py',
    '../_base_/schedules/schedule_lisa.py',
    '../_base_/runtimes/deepspeed_zero2.py',
    '../_base_/default_runtime.py',
]
llava_path = 'data/LLaVA-Lightning-7B-v1-1-hf'
sam_checkpoint = 'data/sam_vit_h_4b8939.pth'
data_root = 'data'
seg_token = '[SEG]'
clip_size = 224  # CLIP ViT-L/14-224: 256 visual tokens
num_classes_per_sample = 3
samples_per_epoch = 2 * 10 * 500 * 8  # batch x accumulation x steps x GPUs (train_ds.py)

model = dict(
    backbone=dict(
        tokenizer=llava_path,
        pretrained=llava_path,
        seg_token=seg_token,
        torch_dtype='bfloat16',
        # LoRA on q/v plus all of embed_tokens and lm_head, as LISA
        trainable=dict(language_model='lora', embeddings='all'),
        lora=dict(r=8, alpha=16, dropout=0.05, target_modules=['q_proj', 'v_proj']),
        gradient_checkpointing=True,
    ),
    sam_encoder=dict(checkpoint=sam_checkpoint, images_per_forward=1),
    head=dict(checkpoint=sam_checkpoint),
)

# ------------------------------------------------- data: _base_/datasets/lisa_mix.py at 224 px
_branches = [
    dict(type='SAMPreprocess', img_size=1024),
    dict(type='CLIPPreprocess', size=clip_size),
    dict(
        type='TokenizeConversation',
        tokenizer=llava_path,
        template='llava_v1',
        max_length=512,  # LISA's model_max_length, after the 256 image features
        num_image_features=256,
        layout='per_query',
        use_im_start_end=True,  # as the backbone (LLaVA-v1's tokenizer lacks the tokens)
        seg_token=seg_token,
    ),
    dict(type='PackLISAInputs'),
]
_seg_pipeline = [dict(type='LoadImageFromFile')] + _branches
_vqa_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadMaskAnnotations')] + _branches
_reason_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadReasonSegAnnotation')] + (
    _branches
)
_sem = dict(
    type='SemanticSegDataset',
    num_classes_per_sample=num_classes_per_sample,
    on_error='skip',
    pipeline=_seg_pipeline,
)
_part = dict(
    type='PartSegDataset',
    data_root=data_root,
    num_classes_per_sample=num_classes_per_sample,
    on_error='skip',
    pipeline=_seg_pipeline,
)
_refer = dict(
    type='RefCOCODataset',
    data_root=data_root + '/refer_seg',
    split='train',
    num_classes_per_sample=num_classes_per_sample,
    on_error='skip',
    pipeline=_seg_pipeline,
)
_sem_seg = dict(
    type='MixedDataset',
    datasets=[
        dict(
            _sem,
            data_root=data_root + '/ade20k',
            split='training',
            classes='ade20k',
            reduce_zero_label=True,
        ),
        dict(
            _sem,
            data_root=data_root,
            split='train2017',
            classes='cocostuff',
            img_dir='coco/{split}',
            seg_dir='cocostuff/{split}',
            reduce_zero_label=False,
            ignore_classes_containing='-',
        ),
        dict(
            _part,
            ann_file='vlpart/pascal_part/train.json',
            img_dir='vlpart/pascal_part/VOCdevkit/VOC2010/JPEGImages',
        ),
        dict(_part, ann_file='vlpart/paco/annotations/paco_lvis_v1_train.json', img_dir='coco'),
        dict(
            _sem,
            data_root=data_root + '/mapillary',
            split='training',
            classes='mapillary',
            img_dir='{split}/images',
            seg_dir='{split}/v2.0/labels',
            reduce_zero_label=False,
        ),
    ],
    seed=1,
)
_refer_seg = dict(
    type='MixedDataset',
    datasets=[
        dict(_refer, dataset='refclef', split_by='unc'),
        dict(_refer, dataset='refcoco', split_by='unc'),
        dict(_refer, dataset='refcoco+', split_by='unc'),
        dict(_refer, dataset='refcocog', split_by='umd'),
    ],
    seed=2,
)
_vqa = dict(
    type='VQADataset',
    data_root=data_root,
    ann_file='llava_dataset/llava_instruct_150k.json',
    data_prefix=dict(img_path='coco/train2017'),
    on_error='skip',
    pipeline=_vqa_pipeline,
)
_reason_seg = dict(
    type='ReasonSegDataset',
    data_root=data_root + '/reason_seg/ReasonSeg',
    split='train',
    num_classes_per_sample=num_classes_per_sample,
    explanatory=0.1,
    on_error='skip',
    pipeline=_reason_pipeline,
)
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='FreshDrawSampler', shuffle=True),  # new draws every epoch
    dataset=dict(
        type='MixedDataset',
        datasets=[_sem_seg, _refer_seg, _vqa, _reason_seg],
        sample_rates=[9, 3, 3, 1],
        num_samples=samples_per_epoch,
        seed=0,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ReasonSegDataset',
        data_root=data_root + '/reason_seg/ReasonSeg',
        split='val',
        test_mode=True,
        pipeline=_reason_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='ReasonSegMetric', group_by='query_type')
test_evaluator = val_evaluator

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
