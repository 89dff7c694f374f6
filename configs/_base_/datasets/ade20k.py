# ADE20K (SceneParsing, ADEChallengeData2016; layout in docs/datasets.md) as class-name
# queries, as LISA trains on it: label 0 ("other") is ignored, value v is class v - 1 of
# the 150 names. Training draws `num_classes_per_sample` classes present in each image
# (a "What is {class} ..."-style question, one <SEG> per class); evaluation asks every
# class present in a validation image on its own (gIoU / cIoU).
dataset_type = 'SemanticSegDataset'
data_root = 'data/ade20k'
sam_img_size = 1024
# masks per training sample, one conversation turn (and one <SEG>) each; LISA uses 3
num_classes_per_sample = 1
ade20k = dict(
    type=dataset_type,
    data_root=data_root,
    classes='ade20k',
    img_dir='images/{split}',
    seg_dir='annotations/{split}',
    reduce_zero_label=True,
)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SAMPreprocess', img_size=sam_img_size),
    dict(type='PackLISAInputs'),
]
test_pipeline = train_pipeline
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        **ade20k,
        split='training',
        num_classes_per_sample=num_classes_per_sample,
        # images without any labelled class are redrawn, as LISA does (logged, counted)
        on_error='skip',
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**ade20k, split='validation', test_mode=True, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='ReasonSegMetric')
test_evaluator = val_evaluator
