# Generated coloured-shapes reasoning segmentation (see lisakit/datasets/shapes_reasonseg.py).
# `sam_img_size` and `clip_size` must match the model's SAM input size and CLIP
# image_size; the method config ties the model's tokenizer to `tokenizer`.
dataset_type = 'ShapesReasonSegDataset'
tokenizer = dict(type='WordTokenizer')
sam_img_size = 64
clip_size = 32
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SAMPreprocess', img_size=sam_img_size),
    dict(type='CLIPPreprocess', size=clip_size),
    # 16 image features (32 px, patch 8); 64 text tokens; the queries of a sample stay
    # turns of one sequence (the demo's model reads one sequence per image)
    dict(
        type='TokenizeConversation',
        tokenizer=tokenizer,
        template='plain',
        max_length=64 + 15,
        num_image_features=16,
        layout='multi_turn',
    ),
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
