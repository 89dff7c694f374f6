# LISA's ReasonSeg (folder format, see docs/datasets.md): train on `train`, evaluate on `val`
# with LISA's fixed prompts and answer, gIoU / cIoU overall and per short / long query.
# The image sizes must match the model: SAM 1024, CLIP 336 for LLaVA-1.5 (224 for LISA v1).
dataset_type = 'ReasonSegDataset'
data_root = 'data/reason_seg/ReasonSeg'
tokenizer = 'data/llava-1.5-7b-hf'
sam_img_size = 1024
clip_size = 336
# LISA's length limit: 512 tokens once CLIP ViT-L/14 at 224 px (256 features) is expanded,
# i.e. 257 text tokens; the same text room at 336 px (576 features) is 832.
num_image_features = (clip_size // 14) ** 2
max_length = 256 + num_image_features
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasonSegAnnotation'),
    dict(type='SAMPreprocess', img_size=sam_img_size),
    dict(type='CLIPPreprocess', size=clip_size),
    dict(
        type='TokenizeConversation',
        tokenizer=tokenizer,
        template='llava_v1',
        max_length=max_length,
        num_image_features=num_image_features,
        layout='per_query',  # LISA: one one-turn sequence per query
    ),
    dict(type='PackLISAInputs'),
]
test_pipeline = train_pipeline
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type, data_root=data_root, split='val', test_mode=True, pipeline=test_pipeline
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='ReasonSegMetric', group_by='query_type')
test_evaluator = val_evaluator
