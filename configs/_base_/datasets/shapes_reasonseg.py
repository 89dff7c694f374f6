# Generated coloured-shapes reasoning segmentation (see lisakit/datasets/shapes_reasonseg.py).
# `sam_img_size` must match the model's SAM input size. The samples are backbone-neutral
# (image, turns with <image> / <SEG>, masks): the tokenizer, the text layout and the CLIP
# preprocessing are the backbone's (model.backbone.processor in the model config).
dataset_type = 'ShapesReasonSegDataset'
sam_img_size = 64
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SAMPreprocess', img_size=sam_img_size),
    dict(type='PackLISAInputs'),
]
test_pipeline = train_pipeline
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type, split='train', num_samples=4000, seed=0, pipeline=train_pipeline
    ),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    # LISA-style validation: the fixed answer "<SEG>." (teacher-forced).
    dataset=dict(
        type=dataset_type,
        split='val',
        num_samples=300,
        seed=0,
        answers=['<SEG>.'],
        test_mode=True,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='ReasonSegMetric', group_by='query_type')
test_evaluator = val_evaluator
