# LISA's ReasonSeg (folder format, see docs/datasets.md): train on `train`, evaluate on `val`
# with LISA's fixed prompts and answer, gIoU / cIoU overall and per short / long query.
# SAM's input size must match the model (1024); the text and CLIP settings are the
# backbone's (model.backbone.processor).
dataset_type = 'ReasonSegDataset'
data_root = 'data/reason_seg/ReasonSeg'
sam_img_size = 1024
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasonSegAnnotation'),
    dict(type='SAMPreprocess', img_size=sam_img_size),
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
